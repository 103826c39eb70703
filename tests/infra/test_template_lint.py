"""The template passes cfn-lint 1.52 (with the SAM transform), `sam validate --lint` and checkov, offline.

infra/lint.sh installs the pinned tools into .venv/lint on first use (about a minute from PyPI), then
runs them without network access to AWS.

The template points at the state machine definition (DefinitionUri), which none of the three tools reads;
so the definition is also linted inline, where cfn-lint checks it against its Amazon States Language schema
(E3601): the Distributed Map that moto cannot run included.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.infra.cfn_template import ASL_PATH, ROOT, TEMPLATE_PATH

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


def _inline_machine(tmp_path, definition: dict):
    """A template holding the definition inline, its placeholders substituted as CloudFormation would."""
    text = json.dumps(definition)
    values = {}
    for name in set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text)):
        if name.endswith("FunctionArn"):
            values[name] = f"arn:aws:lambda:us-east-1:123456789012:function:coach-{name.lower()}"
        else:
            values[name] = "coach-data" if name == "DatasetBucketName" else "5"
    substituted = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: values[m.group(1)], text)
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Machine": {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/dataset-build",
                       "Definition": json.loads(substituted)}}}}
    path = tmp_path / "machine.json"
    path.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return path


def _cfn_lint(path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CFN_LINT), "--format", "parseable", "--", str(path)], capture_output=True, text=True)


def test_the_state_machine_definition_passes_cfn_lints_states_language_check(lint_result, tmp_path):
    definition = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    result = _cfn_lint(_inline_machine(tmp_path, definition))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_states_language_check_sees_a_broken_map(lint_result, tmp_path):
    definition = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    shards = definition["States"]["BuildShards"]
    shards["ItemProcessor"]["States"]["ShardBatch"]["Nextt"] = "Assemble"
    shards["ToleratedFailurePercentage"] = "five"
    result = _cfn_lint(_inline_machine(tmp_path, definition))
    assert result.returncode != 0
    assert result.stdout.count(":E3601:") == 2, result.stdout
