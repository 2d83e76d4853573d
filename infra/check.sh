#!/usr/bin/env bash
# Static checks of the Bicep templates with checkov, in its own virtualenv (it pins an older pycep-parser
# than the project's policy test uses). Fails on any failed check AND on any parsing error: checkov itself
# exits 0 when a file does not parse, which would silently skip that file's checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv-checkov
CHECKOV_VERSION=3.3.30

if [ ! -x "$VENV/bin/checkov" ] || [ "$(cat "$VENV/.version" 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  echo "infra/check.sh: installing checkov==$CHECKOV_VERSION into $VENV"
  "$PYTHON" -m venv "$VENV"
  # pip's output only matters when it fails (some machines' pip config prints pages of warnings).
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" \
      > "$VENV/pip.log" 2>&1; then
    cat "$VENV/pip.log"
    echo "infra/check.sh: could not install checkov==$CHECKOV_VERSION"
    exit 1
  fi
  echo "$CHECKOV_VERSION" > "$VENV/.version"
fi

# The directory to check: infra/ by default (tests point it at fixtures).
target="${1:-infra}"
report="$(mktemp)"
trap 'rm -f "$report" "$report.err"' EXIT
# --skip-download: no network call to the Bridgecrew/Prisma platform (it would only time out).
# checkov's own exit code is ignored: the summary below decides, parsing errors included.
"$VENV/bin/checkov" -d "$target" --framework bicep --skip-download -o json \
  --external-checks-dir infra/checkov_checks > "$report" 2> "$report.err" || true

"$VENV/bin/python" - "$report" "$report.err" <<'PY'
import json
import sys

path, err_path = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
except (OSError, ValueError) as error:
    sys.stderr.write(open(err_path, encoding="utf-8", errors="replace").read())
    print(f"infra/check.sh: checkov produced no JSON report ({error})")
    sys.exit(2)
# One report per framework; with nothing to scan checkov prints an empty summary instead.
reports = data if isinstance(data, list) else [data]
totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
for report in reports:
    summary = report.get("summary", {})
    for key in totals:
        totals[key] += int(summary.get(key, 0))
    for check in report.get("results", {}).get("failed_checks", []):
        print(f"FAILED {check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}")
    for parse_error in report.get("results", {}).get("parsing_errors", []):
        print(f"PARSING ERROR {parse_error}")
print("checkov (bicep): passed={passed} failed={failed} skipped={skipped} "
      "parsing_errors={parsing_errors} resources={resource_count}".format(**totals))
if totals["resource_count"] == 0:
    print("infra/check.sh: checkov found no Bicep resources to check")
    sys.exit(1)
sys.exit(1 if totals["failed"] or totals["parsing_errors"] else 0)
PY
