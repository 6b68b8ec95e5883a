# Sourced by the interop scripts: `pyvenv DIR PACKAGE...` makes a Python virtual environment
# in DIR (installing Debian's python3-venv first if python3 cannot make one), pip-installs the
# packages into it, and sets PYTHON to its interpreter. With PENTE_VENV set, that directory is
# used instead of DIR, so several scripts in one CI run share one environment (pip skips what
# is already installed).
pyvenv() {
  local dir="${PENTE_VENV:-$1}"
  shift
  if [ ! -x "$dir/bin/python" ]; then
    if ! python3 -m venv "$dir" >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$dir"
    fi
  fi
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  PYTHON="$dir/bin/python"
}
