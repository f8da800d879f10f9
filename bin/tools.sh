# Sourced by bin/test and bin/demo: installs the Python tools kinarch's tests and demo use,
# once, into "${KINARCH_TOOLS_DIR:-$HOME/.cache/kinarch}".
TOOLS_DIR="${KINARCH_TOOLS_DIR:-$HOME/.cache/kinarch}"
export KINARCH_TOOLS_DIR="$TOOLS_DIR"

# The emulator: moto server serves DynamoDB and Kinesis on one loopback port. Beside it, the
# peers the tests check kinarch's files with: awslabs' KPL aggregator, and pyarrow and DuckDB,
# which read the Parquet archive's files (tests/parquet_peers.py).
readonly EMULATOR_REQUIREMENTS="moto[server]==5.2.5 aws-kinesis-agg==1.2.3 pyarrow==26.0.1 duckdb==2.0.1"
# What `sam build` runs for the function (template.yaml, BuildMethod rust-cargolambda), and
# bin/package: cargo-lambda links with zig, no Docker.
readonly CARGO_LAMBDA_REQUIREMENTS="cargo-lambda==1.9.2 ziglang==0.17.1"
# Offline template checks and `sam build`: cfn-lint 1.53.3 still expands the SAM transform
# (1.54+ does not); the SAM CLI is the version the README's deploy steps were tested with.
readonly SAM_TOOLS_REQUIREMENTS="cfn-lint==1.53.3 aws-sam-cli==1.170.0 $CARGO_LAMBDA_REQUIREMENTS"

step() { printf '\n==> %s\n' "$*" >&2; }

# ensure_venv NAME REQUIREMENTS [WHY]: a venv holding these requirements, (re)installed only
# when the list changes; a marker file in the venv holds the list that was installed. pip
# shows what it collects and installs, so a first run is not silent.
ensure_venv() {
    local name="$1" wanted="$2" why="${3:-}"
    local venv="$TOOLS_DIR/$name"
    if [[ -x "$venv/bin/python" && "$(cat "$venv/.kinarch-requirements" 2>/dev/null)" == "$wanted" ]]; then
        return 0
    fi
    command -v python3 >/dev/null || { echo "python3 is needed to install $wanted" >&2; return 1; }
    step "installing $wanted into $venv${why:+ ($why)}; once, from PyPI"
    mkdir -p "$TOOLS_DIR"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    # shellcheck disable=SC2086 # the list is words on purpose
    "$venv/bin/pip" install --disable-pip-version-check --progress-bar off $wanted >&2
    printf '%s' "$wanted" > "$venv/.kinarch-requirements"
}
