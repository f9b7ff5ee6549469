#!/usr/bin/env bash
# The whole test command, on a fresh Debian machine as root or on a developer's:
# install OpenLDAP's server and client tools and Samba's AD domain controller if
# missing (the fixtures start their own slapd and Samba instances on loopback;
# nothing here starts or stops a daemon), install exdir with its test extra, run
# pytest with the arguments given.  Samba tests need root and 127.0.0.1:389/636
# free; `-m 'not samba'` leaves them out.
#   scripts/test.sh [pytest args...]      e.g. scripts/test.sh -m 'not slow' -x
#   EXDIR_SKIP_INSTALL=1 skips the pip install (exdir imported from the tree).
#   EXDIR_SKIP_LINT=1 skips ruff and mypy (they run first and fail the run otherwise).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_openldap() {
    [[ -x /usr/sbin/slapd && -x /usr/sbin/slapadd ]] \
        && command -v ldapmodify >/dev/null && command -v ldapsearch >/dev/null
}

have_samba() {
    [[ -x /usr/sbin/samba ]] && command -v samba-tool >/dev/null
}

have_kerberos() {  # kinit for the Kerberos tests; the headers pip builds gssapi with
    command -v kinit >/dev/null && [[ -e /usr/include/gssapi/gssapi.h ]]
}

packages=()
have_openldap || packages+=(slapd ldap-utils)
have_samba || packages+=(samba samba-ad-dc krb5-user winbind)
have_kerberos || packages+=(krb5-user libkrb5-dev)
if [[ -z ${EXDIR_SKIP_INSTALL:-} ]] && ! python3 -m pip --version >/dev/null 2>&1; then
    packages+=(python3-pip)
fi
if (( ${#packages[@]} )); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing ${packages[*]} and not root: apt-get install ${packages[*]}" >&2
        exit 1
    fi
    echo "test.sh: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${packages[@]}"
    have_openldap || { echo "test.sh: slapd/ldap-utils still missing after install" >&2; exit 1; }
    have_samba || { echo "test.sh: samba/samba-tool still missing after install" >&2; exit 1; }
fi

if [[ -z ${EXDIR_SKIP_INSTALL:-} ]]; then
    # Debian's own python3 refuses pip installs (PEP 668); a test machine may override that.
    marker=$(python3 -c 'import sys, sysconfig; print(sysconfig.get_path("stdlib") + "/EXTERNALLY-MANAGED" if sys.prefix == sys.base_prefix else "")')
    if [[ -n $marker && -e $marker ]]; then
        export PIP_BREAK_SYSTEM_PACKAGES=1
    fi
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[test]'
fi

if [[ -z ${EXDIR_SKIP_LINT:-} ]]; then
    # the project's settings (pyproject.toml), never a user-level ruff or mypy config
    echo "test.sh: ruff check" >&2
    python3 -m ruff check --config pyproject.toml --no-cache . \
        || { echo "test.sh: ruff found problems (EXDIR_SKIP_LINT=1 skips it)" >&2; exit 1; }
    echo "test.sh: mypy" >&2
    python3 -m mypy --config-file pyproject.toml \
        || { echo "test.sh: mypy found problems (EXDIR_SKIP_LINT=1 skips it)" >&2; exit 1; }
fi

status=0
python3 -m pytest "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "test.sh: pytest collected no tests — failing" >&2
    exit 1
fi
exit "$status"
