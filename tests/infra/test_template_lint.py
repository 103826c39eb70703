"""The template passes cfn-lint 1.52 (with the SAM transform), `sam validate --lint` and checkov, offline.

infra/lint.sh installs the pinned tools into .venv/lint on first use (about a minute from PyPI), then
runs them without network access to AWS.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.infra.cfn_template import ROOT, TEMPLATE_PATH

LINT = ROOT / "infra" / "lint.sh"
CFN_LINT = ROOT / ".venv" / "lint" / "sam" / "bin" / "cfn-lint"

pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group("template-lint")]


def _lint(template) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(LINT), str(template)], cwd=ROOT, capture_output=True, text=True,
                          timeout=880)


@pytest.fixture(scope="module")
def lint_result() -> subprocess.CompletedProcess[str]:
    return _lint(TEMPLATE_PATH)


def test_template_passes_cfn_lint_sam_validate_and_checkov(lint_result):
    report = lint_result.stdout + lint_result.stderr
    assert lint_result.returncode == 0, report[-6000:]
    assert "is a valid SAM Template" in report
    assert "Failed checks: 0" in report


def test_cfn_lint_is_the_release_that_checks_sam_generated_resources(lint_result):
    version = subprocess.run([str(CFN_LINT), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.split()[-1].startswith("1.52."), version


def test_a_visibility_timeout_below_the_generator_timeout_is_an_error(lint_result, tmp_path):
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    assert "VisibilityTimeout: 1800" in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace("VisibilityTimeout: 1800", "VisibilityTimeout: 120"), encoding="utf-8")
    result = subprocess.run([str(CFN_LINT), "--format", "parseable", "--", str(broken)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert ":E3505:" in result.stdout, result.stdout
