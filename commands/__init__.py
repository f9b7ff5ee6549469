"""The exdir command line (typer): parse options, call exdir, print. No LDAP logic here."""
