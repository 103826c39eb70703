#!/usr/bin/env bash
# Lints the SAM template offline: cfn-lint (with the SAM transform), `sam validate --lint`, checkov.
# Exits non-zero on any error or warning. The tools live in .venv/lint (created on first use from
# infra/requirements-lint.txt), apart from the project's virtualenv because their pins conflict with it.
#
#   infra/lint.sh [template]      (default: template.yaml at the repository root)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPLATE="${1:-$ROOT/template.yaml}"
REQUIREMENTS="$ROOT/infra/requirements-lint.txt"
LINT_VENV="${LINT_VENV:-$ROOT/.venv/lint}"
SAM_VENV="$LINT_VENV/sam"
CHECKOV_VENV="$LINT_VENV/checkov"
PYTHON="${PYTHON:-python3}"

# Reinstall when the pinned versions change.
STAMP_WANTED="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"

ensure_venv() {  # dir, requirement lines...
  local dir="$1"; shift
  if [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$STAMP_WANTED" ]]; then
    return
  fi
  echo "lint: installing $* into $dir" >&2
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
  echo "$STAMP_WANTED" > "$dir/.installed"
}

pin() { grep -E "^$1==" "$REQUIREMENTS"; }

# One installer at a time (parallel test workers may all start here on a fresh checkout).
mkdir -p "$LINT_VENV"
exec 9>"$LINT_VENV/.install.lock"
flock 9
ensure_venv "$SAM_VENV" "$(pin cfn-lint)" "$(pin aws-sam-cli)"
ensure_venv "$CHECKOV_VENV" "$(pin checkov)"
flock -u 9

# Offline and quiet: no telemetry, no update checks, no downloads of extra checks.
export SAM_CLI_TELEMETRY=0
export SAM_CLI_DISABLE_VERSION_CHECK=1
export CKV_SKIP_PACKAGE_UPDATE_CHECK=True
export BC_SKIP_MAPPING=TRUE
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

status=0
cd "$ROOT"

echo "== cfn-lint $("$SAM_VENV/bin/cfn-lint" --version | awk '{print $2}')" >&2
"$SAM_VENV/bin/cfn-lint" --format parseable -- "$TEMPLATE" || status=1

echo "== sam validate --lint" >&2
"$SAM_VENV/bin/sam" validate --lint --template-file "$TEMPLATE" --region "$AWS_DEFAULT_REGION" || status=1

echo "== checkov" >&2
"$CHECKOV_VENV/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
  --file "$TEMPLATE" || status=1

if [[ $status -ne 0 ]]; then
  echo "lint: FAILED" >&2
else
  echo "lint: template is clean" >&2
fi
exit $status
