# Orthanc (+ DICOMweb plugin) and DCMTK for the PACS integration tests and benchmarks (tests/*/test_pacs*).
# Sourced by scripts/test; idempotent: a second run only checks.
_wb_orthanc_missing=""
{ [ -x /usr/sbin/Orthanc ] || command -v Orthanc >/dev/null 2>&1; } || _wb_orthanc_missing="$_wb_orthanc_missing orthanc"
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] \
    || ls /usr/share/orthanc/plugins*/libOrthancDicomWeb.so >/dev/null 2>&1 \
    || _wb_orthanc_missing="$_wb_orthanc_missing orthanc-dicomweb"
command -v getscu >/dev/null 2>&1 || _wb_orthanc_missing="$_wb_orthanc_missing dcmtk"
if [ -n "$_wb_orthanc_missing" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        echo "workbench: installing${_wb_orthanc_missing} with apt-get (PACS tests)"
        { apt-get update -qq >/dev/null 2>&1 || true; }
        # --no-install-recommends: no system service is wanted, the tests start their own Orthanc
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $_wb_orthanc_missing >/dev/null 2>&1 \
            || echo "workbench: apt-get could not install${_wb_orthanc_missing}; PACS tests will skip"
        # the Debian package may start a system Orthanc on 4242/8042: the tests never use it
    else
        echo "workbench: missing${_wb_orthanc_missing} (not root or no apt-get); PACS integration tests will skip"
    fi
fi
unset _wb_orthanc_missing
