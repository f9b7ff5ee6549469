"""Reading: the directory turned into model objects, in bulk.

The one place besides the apply engine that searches the directory: paged
searches per partition or chunked filters, never one search per object.  The
planners (exdir.rename, exdir.move, exdir.health, exdir.checks, exdir.x500,
exdir.legacydn, exdir.topology) take what these return and import no backend,
so data flows one way: read, plan, apply.
"""
