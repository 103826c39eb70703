"""template.yaml describes what is really in the repository, with the limits the pipeline relies on."""

from __future__ import annotations

import ast
import json

import pytest

from coach.domain.records import BuildRequest
from tests.infra.cfn_template import (
    ROOT,
    function_environment,
    function_property,
    load_template,
    resources_of_type,
    serverless_functions,
)


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def _defines(path, name: str) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


def test_every_handler_and_code_uri_resolves_to_a_real_function(template):
    problems = []
    for logical_id in serverless_functions(template):
        code_uri = function_property(template, logical_id, "CodeUri")
        module, _, attribute = function_property(template, logical_id, "Handler").rpartition(".")
        source = ROOT / code_uri / (module.replace(".", "/") + ".py")
        if not source.is_file():
            problems.append(f"{logical_id}: {source.relative_to(ROOT)} does not exist")
        elif not _defines(source, attribute):
            problems.append(f"{logical_id}: {source.relative_to(ROOT)} defines no {attribute}")
    assert not problems, "\n".join(problems)


def test_every_function_folder_is_deployed(template):
    deployed = {function_property(template, f, "CodeUri").rstrip("/") for f in serverless_functions(template)}
    folders = {f"functions/{p.parent.name}" for p in (ROOT / "functions").glob("*/app.py")}
    assert folders <= deployed, f"handlers missing from template.yaml: {sorted(folders - deployed)}"


def test_functions_run_on_python_313_arm64_with_the_coach_layer(template):
    (layer_id, layer), = resources_of_type(template, "AWS::Serverless::LayerVersion").items()
    assert layer["Properties"]["ContentUri"] == "shared/"
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert (ROOT / "shared" / "requirements.txt").is_file()
    assert (ROOT / "shared" / "coach" / "__init__.py").is_file()
    for logical_id in serverless_functions(template):
        assert function_property(template, logical_id, "Runtime") == "python3.13", logical_id
        assert function_property(template, logical_id, "Architectures") == ["arm64"], logical_id
        assert function_property(template, logical_id, "Layers") == [{"Ref": layer_id}], logical_id
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_story_queue_outlasts_six_generator_timeouts_and_redrives_to_the_dlq(template):
    resources = template["Resources"]
    (mapping,) = resources_of_type(template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    generator = props["FunctionName"]["Ref"]
    queue = resources[props["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]

    assert queue["VisibilityTimeout"] >= 6 * function_property(template, generator, "Timeout")
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "GeneratorMaxConcurrency"}
    assert props["BatchSize"] == {"Ref": "GeneratorBatchSize"}
    dlq = resources[queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] and dlq["SqsManagedSseEnabled"]
    # The generator knows which delivery is the last one.
    assert function_environment(template, generator)["COACH_MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"}


def test_functions_get_every_setting_the_handlers_read(template):
    wanted = {"COACH_BUCKET", "COACH_STORY_QUEUE_URL", "COACH_STORY_DLQ_URL", "COACH_IDEMPOTENCY_TABLE",
              "COACH_MODEL_PARAMETER", "COACH_OPENAI_SECRET", "COACH_REDDIT_SECRET", "OPENAI_BASE_URL",
              "COACH_PROVIDER", "COACH_MODEL", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE",
              "POWERTOOLS_LOG_LEVEL"}
    for logical_id in serverless_functions(template):
        missing = wanted - set(function_environment(template, logical_id))
        assert not missing, f"{logical_id} lacks {sorted(missing)}"


def test_secrets_are_passed_by_name_and_read_only_by_their_users(template):
    params = template["Parameters"]
    env = function_environment(template, "CritiqueFunction")
    # Names of Secrets Manager secrets, never the values: no parameter hides a value with NoEcho.
    assert env["COACH_OPENAI_SECRET"] == {"Ref": "OpenAISecretName"}
    assert env["COACH_REDDIT_SECRET"] == {"Ref": "RedditSecretName"}
    assert not [name for name, p in params.items() if p.get("NoEcho")]
    readers = {}
    for logical_id, function in serverless_functions(template).items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "AWSSecretsManagerGetSecretValuePolicy" in policy:
                arn = policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]["Fn::Sub"]
                secret = "openai" if "${OpenAISecretName}-??????" in arn else "reddit"
                assert arn.endswith("-??????"), arn  # that secret only, not every secret with the prefix
                readers.setdefault(secret, set()).add(logical_id)
    assert readers == {
        "openai": {"GeneratorFunction", "FineTuneFunction", "CritiqueFunction", "EvaluateFunction", "BatchFunction"},
        "reddit": {"ScraperFunction"},
    }


def _statements(template: dict):
    holders = {**serverless_functions(template), **resources_of_type(template, "AWS::Serverless::StateMachine")}
    for logical_id, resource in holders.items():
        for policy in resource["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                for statement in policy["Statement"]:
                    yield logical_id, statement


def test_no_inline_policy_allows_every_resource_where_a_narrower_one_exists(template):
    wildcard = [(owner, s.get("Sid")) for owner, s in _statements(template) if s["Resource"] == "*"]
    # Step Functions' log delivery actions accept no resource ARN; nothing else may use "*".
    assert wildcard == [("DatasetBuildStateMachine", "DeliverExecutionLogs")]


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


# Writing (multipart uploads included) and listing; no delete anywhere: rejected work is kept, not removed.
S3_ACTIONS = {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
              "s3:ListBucket"}


def test_writers_may_only_put_objects_under_builds(template):
    writable = {}
    for owner, statement in _statements(template):
        s3 = {a for a in _actions(statement) if a.startswith("s3:")}
        assert s3 <= S3_ACTIONS, (owner, statement.get("Sid"))
        if "s3:PutObject" in s3:
            writable.setdefault(statement["Resource"]["Fn::Sub"], set()).add(owner)
    assert writable == {
        "${DataBucket.Arn}/builds/*": {"ScraperFunction", "GeneratorFunction", "ProgressFunction", "ShardFunction",
                                       "AssemblerFunction", "FineTuneFunction", "EvaluateFunction", "BatchFunction"},
        "${DataBucket.Arn}/index/stories/*": {"ScraperFunction"},
        # The shard map's ResultWriter.
        "${DataBucket.Arn}/builds/*/map-results/*": {"DatasetBuildStateMachine"},
    }


def test_bucket_is_private_encrypted_and_tls_only(template):
    bucket = template["Resources"]["DataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    (statement,) = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_idempotency_table_expires_records(template):
    table = template["Resources"]["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_critiques_need_the_api_key_and_the_key_is_throttled(template):
    api = template["Resources"]["CritiqueApi"]["Properties"]
    assert api["Auth"]["ApiKeyRequired"] is True
    events = template["Resources"]["CritiqueFunction"]["Properties"]["Events"]
    keyed = {(e["Properties"]["Path"], e["Properties"]["Method"]):
             e["Properties"].get("Auth", {}).get("ApiKeyRequired", True) for e in events.values()}
    assert keyed == {("/critiques", "POST"): True, ("/health", "GET"): False, ("/swagger", "GET"): False}
    plan = template["Resources"]["CritiqueUsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "CritiqueApi"}, "Stage": {"Ref": "CritiqueApi.Stage"}}]
    assert plan["Throttle"] == {"RateLimit": {"Ref": "ApiRateLimit"}, "BurstLimit": {"Ref": "ApiBurstLimit"}}
    assert plan["Quota"]["Period"] == "DAY"
    key = template["Resources"]["CritiqueUsagePlanKey"]["Properties"]
    assert key["KeyId"] == {"Ref": "CritiqueApiKey"} and key["UsagePlanId"] == {"Ref": "CritiqueUsagePlan"}


def test_alarms_watch_the_dlq_functions_and_builds(template):
    alarms = resources_of_type(template, "AWS::CloudWatch::Alarm")
    watched = set()
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        for metric in [props] + [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]:
            if "MetricName" in metric:
                watched.add(metric["MetricName"])
    assert {"ApproximateNumberOfMessagesVisible", "Errors", "ExecutionsFailed", "5XXError"} <= watched
    errors_alarm = template["Resources"]["FunctionErrorsAlarm"]["Properties"]["Metrics"]
    alarmed = {m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"] for m in errors_alarm if "MetricStat" in m}
    assert alarmed == set(serverless_functions(template))


def test_every_function_has_a_log_group_with_retention(template):
    groups = resources_of_type(template, "AWS::Logs::LogGroup")
    named = {g["Properties"]["LogGroupName"]["Fn::Sub"] for g in groups.values()}
    for logical_id in serverless_functions(template):
        assert f"/aws/lambda/${{{logical_id}}}" in named, logical_id
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups.values())


def test_outputs_tell_how_to_reach_everything(template):
    outputs = template["Outputs"]
    assert {"CritiqueApiUrl", "GetApiKeyCommand", "DatasetBuildStateMachineArn", "DataBucketName"} <= set(outputs)
    assert "--include-value" in outputs["GetApiKeyCommand"]["Value"]["Fn::Sub"]


def test_sample_build_request_is_a_valid_build_request():
    sample = json.loads((ROOT / "infra" / "events" / "build_request.json").read_text(encoding="utf-8"))
    request = BuildRequest.model_validate(sample)
    assert request.fine_tune.enabled


def test_sample_batch_build_request_asks_for_batch_generation():
    sample = json.loads((ROOT / "infra" / "events" / "build_request_batch.json").read_text(encoding="utf-8"))
    request = BuildRequest.model_validate(sample)
    assert request.generation == "batch" and request.batch.fallback == "sync"


def test_sample_events_are_json():
    events = sorted((ROOT / "infra" / "events").glob("*.json"))
    assert events
    for path in events:
        json.loads(path.read_text(encoding="utf-8"))


def test_api_gateway_refusals_use_the_api_error_shape(template):
    responses = template["Resources"]["CritiqueApi"]["Properties"]["GatewayResponses"]
    assert {"INVALID_API_KEY", "THROTTLED", "QUOTA_EXCEEDED", "REQUEST_TOO_LARGE"} <= set(responses)
    for name, response in responses.items():
        body = json.loads(response["ResponseTemplates"]["application/json"])
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, name
        assert 400 <= int(response["StatusCode"]) < 600


def _bedrock_statements(template: dict) -> dict[str, dict]:
    return {f"{owner}.{s.get('Sid')}": s for owner, s in _statements(template)
            if any(str(a).startswith(("bedrock:", "iam:PassRole"))
                   for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))}


def test_bedrock_access_is_least_privilege(template):
    found = _bedrock_statements(template)
    assert set(found) == {"GeneratorFunction.ConverseWithTeacher", "CritiqueFunction.ConverseWithCritic",
                          "EvaluateFunction.ConverseWithCandidates", "FineTuneFunction.CustomizeOnBedrock",
                          "FineTuneFunction.HandTheJobItsRole", "BatchFunction.BatchOnBedrock",
                          "BatchFunction.HandTheJobItsRole"}
    teacher = found["GeneratorFunction.ConverseWithTeacher"]
    assert teacher["Action"] == "bedrock:InvokeModel"
    assert [r["Fn::Sub"] for r in teacher["Resource"]] == [
        "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${TeacherModel}",
        "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/${TeacherModel}"]
    critic = [r["Fn::Sub"] for r in found["CritiqueFunction.ConverseWithCritic"]["Resource"]]
    assert critic[0].endswith("foundation-model/${BaseModel}") and critic[2].endswith("custom-model-deployment/*")
    customize = found["FineTuneFunction.CustomizeOnBedrock"]
    assert not any(a.startswith("bedrock:Delete") for a in customize["Action"])  # nothing is deleted by a build
    passes = found["FineTuneFunction.HandTheJobItsRole"]
    assert passes["Resource"] == {"Fn::GetAtt": ["BedrockCustomizationRole", "Arn"]}
    assert passes["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    env = function_environment(template, "FineTuneFunction")
    assert env["COACH_BEDROCK_ROLE_ARN"] == {"Fn::GetAtt": ["BedrockCustomizationRole", "Arn"]}


def test_the_customization_role_reads_datasets_and_writes_job_output_only(template):
    role = template["Resources"]["BedrockCustomizationRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    (policy,) = role["Policies"]
    grants = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert grants["ReadDatasets"]["Action"] == "s3:GetObject"
    assert grants["ReadDatasets"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/builds/*/dataset/*"}
    assert grants["WriteJobOutput"]["Action"] == "s3:PutObject"
    assert grants["WriteJobOutput"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/builds/*/fine-tune-output/*"}
    assert set(grants) == {"ReadDatasets", "ListBuilds", "WriteJobOutput"}


def test_batch_inference_uses_the_teacher_and_its_own_role_only(template):
    found = _bedrock_statements(template)
    batch = found["BatchFunction.BatchOnBedrock"]
    assert sorted(batch["Action"]) == ["bedrock:CreateModelInvocationJob", "bedrock:GetModelInvocationJob",
                                       "bedrock:StopModelInvocationJob"]
    resources = [r["Fn::Sub"] for r in batch["Resource"]]
    assert resources[0].endswith("foundation-model/${TeacherModel}") and resources[2].endswith("model-invocation-job/*")
    passes = found["BatchFunction.HandTheJobItsRole"]
    assert passes["Resource"] == {"Fn::GetAtt": ["BedrockBatchRole", "Arn"]}
    assert passes["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    assert function_environment(template, "BatchFunction")["COACH_BEDROCK_BATCH_ROLE_ARN"] == {
        "Fn::GetAtt": ["BedrockBatchRole", "Arn"]}
    role = template["Resources"]["BedrockBatchRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith("model-invocation-job/*")
    (policy,) = role["Policies"]
    grants = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert grants["ReadBatchRequests"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/builds/*/batch/requests/*"}
    assert grants["WriteBatchOutput"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/builds/*/batch/output/*"}
    assert set(grants) == {"ReadBatchRequests", "ListBuilds", "WriteBatchOutput", "InvokeTeacher"}


def test_a_stopped_build_cancels_its_batches(template):
    rule = template["Resources"]["CancelBatchesOnAbort"]["Properties"]
    assert rule["EventPattern"]["detail"]["status"] == ["ABORTED", "TIMED_OUT"]
    assert rule["EventPattern"]["detail"]["stateMachineArn"] == [{"Ref": "DatasetBuildStateMachine"}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["BatchFunction", "Arn"]}
    permission = template["Resources"]["CancelBatchesOnAbortPermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["CancelBatchesOnAbort", "Arn"]}


def test_a_console_click_gets_the_deployments_bedrock_defaults(template):
    params = template["Parameters"]
    assert params["Provider"]["Default"] == params["TeacherProvider"]["Default"] == "bedrock"
    assert params["FineTuneBackend"]["Default"] == "bedrock"
    assert params["FineTuneBackend"]["AllowedValues"] == ["bedrock", "openai", "none"]
    env = function_environment(template, "CheckInputFunction")
    assert env["COACH_TEACHER_PROVIDER"] == {"Ref": "TeacherProvider"}
    assert env["COACH_FINE_TUNE_BACKEND"] == {"Ref": "FineTuneBackend"}
    # No default names a model its provider shuts down within 90 days.
    defaults = " ".join(str(p.get("Default", "")) for p in params.values())
    assert "gpt-4o" not in defaults and "gpt-4.1" not in defaults


# -- 100,000 stories a build: the shard map, the run tally and the limits that scale ---------------------------


def _statement(template: dict, owner: str, sid: str) -> dict:
    (found,) = [s for o, s in _statements(template) if o == owner and s.get("Sid") == sid]
    return found


def _uses_policy(template: dict, owner: str, policy: str) -> list[dict]:
    return [p[policy] for p in template["Resources"][owner]["Properties"]["Policies"]
            if isinstance(p, dict) and policy in p]


def test_the_shard_function_replaces_the_validator(template):
    functions = serverless_functions(template)
    assert "ValidatorFunction" not in functions
    assert function_property(template, "ShardFunction", "CodeUri") == "functions/shard/"
    assert function_property(template, "ShardFunction", "Handler") == "app.lambda_handler"
    # An EXPRESS child execution runs at most 5 minutes, its retries included.
    assert function_property(template, "ShardFunction", "Timeout") <= 300
    assert function_property(template, "ShardFunction", "MemorySize") == 1024
    assert _uses_policy(template, "ShardFunction", "S3ReadPolicy") == [{"BucketName": {"Ref": "DataBucket"}}]
    assert _statement(template, "ShardFunction", "WriteBuildObjects")["Resource"] == {
        "Fn::Sub": "${DataBucket.Arn}/builds/*"}
    machine = template["Resources"]["DatasetBuildStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["ShardFunctionArn"] == {"Fn::GetAtt": ["ShardFunction", "Arn"]}
    assert "ValidatorFunctionArn" not in machine["DefinitionSubstitutions"]


def test_the_state_machine_role_can_run_its_distributed_map(template):
    machine = template["Resources"]["DatasetBuildStateMachine"]["Properties"]
    # The role names the machine by the name it is given, not by a reference to it (that would be circular).
    assert machine["Name"] == {"Fn::Sub": "${AWS::StackName}-DatasetBuild"}
    arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    start = _statement(template, "DatasetBuildStateMachine", "StartMapChildExecutions")
    assert start["Action"] == "states:StartExecution"
    assert start["Resource"] == {"Fn::Sub": f"{arn}:stateMachine:${{AWS::StackName}}-DatasetBuild"}
    follow = _statement(template, "DatasetBuildStateMachine", "FollowMapChildExecutions")
    assert sorted(follow["Action"]) == ["states:DescribeExecution", "states:StopExecution"]
    assert {r["Fn::Sub"] for r in follow["Resource"]} == {
        f"{arn}:execution:${{AWS::StackName}}-DatasetBuild/*", f"{arn}:execution:${{AWS::StackName}}-DatasetBuild:*"}
    listing = _statement(template, "DatasetBuildStateMachine", "ListBuildStories")
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == {"Fn::GetAtt": ["DataBucket", "Arn"]}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["builds/*/stories/*"]}}
    results = _statement(template, "DatasetBuildStateMachine", "WriteMapResults")
    assert sorted(results["Action"]) == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts",
                                         "s3:PutObject"]
    assert results["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/builds/*/map-results/*"}
    invocable = [p["FunctionName"] for p in _uses_policy(template, "DatasetBuildStateMachine", "LambdaInvokePolicy")]
    assert {"Ref": "ShardFunction"} in invocable


def test_the_run_tally_is_read_and_written_by_scraper_and_progress(template):
    for owner in ("ScraperFunction", "ProgressFunction"):
        tally = _statement(template, owner, "TallyBuildRun")
        # TransactWriteItems has no IAM action: its items need PutItem / UpdateItem / ConditionCheckItem.
        assert set(tally["Action"]) == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem",
                                        "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"}, owner
        assert tally["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}, owner
        # The same variable the generator reads the table's name from.
        assert function_environment(template, owner)["COACH_IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    env = function_environment(template, "ProgressFunction")
    assert env["COACH_STORIES_PER_MINUTE"] == {"Ref": "ProviderStoriesPerMinute"}
    assert env["COACH_GENERATION_POLL_SECONDS"] == {"Ref": "GenerationPollSeconds"}


def test_the_assembler_has_room_for_100k_stories_and_writes_in_parts(template):
    assert function_property(template, "AssemblerFunction", "Timeout") == 900
    assert function_property(template, "AssemblerFunction", "MemorySize") == 3008
    parts = _statement(template, "AssemblerFunction", "WriteDatasetInParts")
    assert sorted(parts["Action"]) == ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    # The map's results (builds/*/map-results/*) are read through the bucket-wide read policy.
    assert _uses_policy(template, "AssemblerFunction", "S3ReadPolicy") == [{"BucketName": {"Ref": "DataBucket"}}]


@pytest.mark.parametrize(("name", "default", "low", "high"), [
    ("ShardBatchSize", 400, 1, 1000),
    ("ShardMaxConcurrency", 50, 1, 1000),
    ("ShardToleratedFailurePercent", 5, 0, 100),
    ("GeneratorMaxConcurrency", 22, 2, 1000),
    ("ProviderStoriesPerMinute", 600, 1, 100000),
])
def test_the_scaling_parameters_have_defaults_for_100k_stories_and_say_why(template, name, default, low, high):
    param = template["Parameters"][name]
    assert (param["Type"], param["Default"], param["MinValue"], param["MaxValue"]) == ("Number", default, low, high)
    assert any(ch.isdigit() for ch in param["Description"].replace(str(default), "")), "no arithmetic shown"
    grouped = {n for group in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
               for n in group["Parameters"]}
    assert name in grouped


def test_the_map_settings_reach_the_state_machine_and_the_fixed_generation_cap_is_gone(template):
    substitutions = template["Resources"]["DatasetBuildStateMachine"]["Properties"]["DefinitionSubstitutions"]
    for name in ("ShardBatchSize", "ShardMaxConcurrency", "ShardToleratedFailurePercent"):
        assert substitutions[name] == {"Ref": name}
    assert "GenerationMaxChecks" not in template["Parameters"] and "GenerationMaxChecks" not in substitutions
    description = template["Parameters"]["ProviderStoriesPerMinute"]["Description"]
    assert "100,000 stories at 600 a minute" in description and "2.8 h" in description
