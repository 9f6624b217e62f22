//! template.yaml held against the code: the schedules against the job registry, each
//! function's environment against what `Config` needs in Lambda (and `check`'s production
//! rules), the queue and its dead-letter queue against the worker, the deploy hook against its
//! CloudFormation events, and each function against the crate that builds it.
//!
//! CloudFormation's intrinsic functions are evaluated here the way CloudFormation would,
//! with the parameters' defaults (plus sample values for those without one) and placeholder
//! values for resource references.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use serde_norway::Value as Yaml;
use shared::config::{self, Config, Profile, Vars};
use shared::jobs::JOBS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// template.yaml, or the file `TEMPLATE_UNDER_TEST` names (for checking that these tests
/// catch a broken copy).
fn template() -> Yaml {
    let path = std::env::var_os("TEMPLATE_UNDER_TEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("template.yaml"));
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap()
}

const QUEUE_URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/starter-WorkerQueue-AbC";
const API_ID: &str = "abc123def4";
/// What a `{{resolve:secretsmanager:...}}` reference resolves to at deploy time.
const DATABASE_URL: &str = "postgres://app:secret@db.example.com:5432/app";

/// The template's parameters and conditions, for evaluating intrinsic functions.
struct Stack<'a> {
    template: &'a Yaml,
    parameters: BTreeMap<String, Json>,
}

impl<'a> Stack<'a> {
    /// The parameters' defaults, sample values for those without one, then `overrides`.
    fn new(template: &'a Yaml, overrides: &[(&str, &str)]) -> Self {
        let samples = [
            (
                "SecretKey",
                "k8Jq2vX9mN4pL7rT1wY6zB3cF5hD0gS8aE2uI9oP4lK7jH1mN6bV3c",
            ),
            ("DatabaseSecret", "starter/database"),
            ("FromEmail", "noreply@example.com"),
        ];
        let mut parameters = BTreeMap::new();
        let declared = template["Parameters"].as_mapping().unwrap();
        for (name, spec) in declared {
            let name = name.as_str().unwrap().to_owned();
            let list = spec["Type"].as_str() == Some("CommaDelimitedList");
            let value = match spec.get("Default") {
                Some(default) => scalar(default),
                None => samples
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_else(|| panic!("parameter {name} has no default and no sample")),
            };
            parameters.insert(name, param_value(&value, list));
        }
        for (name, value) in overrides {
            let list = declared[*name]["Type"].as_str() == Some("CommaDelimitedList");
            assert!(parameters.contains_key(*name), "no parameter {name}");
            parameters.insert(name.to_string(), param_value(value, list));
        }
        Self {
            template,
            parameters,
        }
    }

    fn condition(&self, name: &str) -> bool {
        let spec = &self.template["Conditions"][name];
        assert!(!spec.is_null(), "no condition {name}");
        self.eval(spec).unwrap().as_bool().unwrap()
    }

    fn reference(&self, name: &str) -> Option<Json> {
        if let Some(value) = self.parameters.get(name) {
            return Some(value.clone());
        }
        let pseudo = match name {
            "AWS::Region" => "us-east-1",
            "AWS::URLSuffix" => "amazonaws.com",
            "AWS::StackName" => "starter",
            "AWS::AccountId" => "123456789012",
            "AWS::Partition" => "aws",
            "AWS::NoValue" => return None,
            "WorkerQueue" => QUEUE_URL,
            "HttpApi" => API_ID,
            other => {
                let resource = &self.template["Resources"][other.split('.').next().unwrap()];
                assert!(!resource.is_null(), "Ref to unknown {other}");
                return Some(json!(format!("ref:{other}")));
            }
        };
        Some(json!(pseudo))
    }

    /// Evaluates a template value; `None` is `AWS::NoValue`.
    fn eval(&self, value: &Yaml) -> Option<Json> {
        if let Some((function, args)) = intrinsic(value) {
            return self.call(&function, args);
        }
        Some(match value {
            Yaml::Sequence(items) => {
                Json::Array(items.iter().filter_map(|v| self.eval(v)).collect())
            }
            Yaml::Mapping(map) => Json::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.as_str().unwrap().to_owned(), self.eval(v)?)))
                    .collect(),
            ),
            other => json!(scalar(other)),
        })
    }

    fn call(&self, function: &str, args: &Yaml) -> Option<Json> {
        let list = |args: &Yaml| args.as_sequence().unwrap().clone();
        let string = |v: Option<Json>| v.unwrap().as_str().unwrap().to_owned();
        Some(match function {
            "Ref" => return self.reference(args.as_str().unwrap()),
            "Condition" => json!(self.condition(args.as_str().unwrap())),
            "Fn::If" => {
                let a = list(args);
                let branch = if self.condition(a[0].as_str().unwrap()) {
                    &a[1]
                } else {
                    &a[2]
                };
                return self.eval(branch);
            }
            "Fn::Equals" => {
                let a = list(args);
                json!(self.eval(&a[0]) == self.eval(&a[1]))
            }
            "Fn::Not" => json!(!self.eval(&list(args)[0]).unwrap().as_bool().unwrap()),
            "Fn::And" => json!(
                list(args)
                    .iter()
                    .all(|a| self.eval(a).unwrap().as_bool().unwrap())
            ),
            "Fn::Or" => json!(
                list(args)
                    .iter()
                    .any(|a| self.eval(a).unwrap().as_bool().unwrap())
            ),
            "Fn::Join" => {
                let a = list(args);
                let items = self.eval(&a[1]).unwrap();
                let parts: Vec<String> = items
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                json!(parts.join(a[0].as_str().unwrap()))
            }
            "Fn::Split" => {
                let a = list(args);
                let text = string(self.eval(&a[1]));
                json!(text.split(a[0].as_str().unwrap()).collect::<Vec<_>>())
            }
            "Fn::Select" => {
                let a = list(args);
                let index: usize = scalar(&a[0]).parse().unwrap();
                self.eval(&a[1]).unwrap()[index].clone()
            }
            "Fn::GetAtt" => {
                let path = match args {
                    Yaml::String(s) => s.clone(),
                    other => list(other)
                        .iter()
                        .map(|v| v.as_str().unwrap().to_owned())
                        .collect::<Vec<_>>()
                        .join("."),
                };
                json!(format!("getatt:{path}"))
            }
            "Fn::Sub" => {
                let (text, vars) = match args {
                    Yaml::String(s) => (s.clone(), BTreeMap::new()),
                    other => {
                        let a = list(other);
                        let vars = a[1]
                            .as_mapping()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.as_str().unwrap().to_owned(), string(self.eval(v))))
                            .collect();
                        (a[0].as_str().unwrap().to_owned(), vars)
                    }
                };
                json!(self.substitute(&text, &vars))
            }
            other => panic!("intrinsic function {other} is not evaluated by this test"),
        })
    }

    fn substitute(&self, text: &str, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 2..end];
            let value = match vars.get(name) {
                Some(v) => v.clone(),
                None if name.contains('.') && !name.starts_with("AWS::") => {
                    format!("getatt:{name}")
                }
                None => self.reference(name).unwrap().as_str().unwrap().to_owned(),
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// `!Ref x` / `{"Ref": x}` / `!Sub ...` / `{"Fn::Sub": ...}` as (`Ref` | `Fn::Sub`, argument).
fn intrinsic(value: &Yaml) -> Option<(String, &Yaml)> {
    match value {
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let name = match name {
                "Ref" | "Condition" => name.to_owned(),
                other => format!("Fn::{other}"),
            };
            Some((name, &tagged.value))
        }
        Yaml::Mapping(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next().unwrap();
            let key = key.as_str()?;
            (key == "Ref" || key == "Condition" || key.starts_with("Fn::"))
                .then(|| (key.to_owned(), arg))
        }
        _ => None,
    }
}

fn scalar(value: &Yaml) -> String {
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn param_value(value: &str, list: bool) -> Json {
    if list {
        json!(
            value
                .split(',')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        )
    } else {
        json!(value)
    }
}

fn functions(template: &Yaml) -> Vec<(String, &Yaml)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(name, r)| (name.as_str().unwrap().to_owned(), r))
        .collect()
}

/// A function's property, or the Globals' one.
fn property<'t>(template: &'t Yaml, function: &'t Yaml, name: &str) -> &'t Yaml {
    let own = &function["Properties"][name];
    if own.is_null() {
        &template["Globals"]["Function"][name]
    } else {
        own
    }
}

/// The environment CloudFormation gives `function`: the Globals' variables, then its own.
fn environment(stack: &Stack, function: &Yaml) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for source in [
        &stack.template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Properties"]["Environment"]["Variables"],
    ] {
        let Some(vars) = source.as_mapping() else {
            continue;
        };
        for (name, value) in vars {
            let Some(value) = stack.eval(value) else {
                continue;
            };
            let mut value = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            if value.starts_with("{{resolve:secretsmanager:") {
                value = DATABASE_URL.to_owned();
            }
            env.insert(name.as_str().unwrap().to_owned(), value);
        }
    }
    env
}

/// Each function's configuration as Lambda would load it, for one set of parameters.
fn configs(overrides: &[(&str, &str)]) -> Vec<(String, BTreeMap<String, String>, Config)> {
    let template = template();
    let stack = Stack::new(&template, overrides);
    functions(&template)
        .into_iter()
        .map(|(name, function)| {
            let env = environment(&stack, function);
            for var in env.keys() {
                assert!(
                    config::VARIABLES.contains(&var.as_str()),
                    "{name} sets {var}, which the configuration never reads"
                );
            }
            let mut vars = env.clone();
            vars.insert("AWS_LAMBDA_FUNCTION_NAME".into(), format!("starter-{name}"));
            let config = Config::from_vars(&Profile::Lambda, &Vars::from_pairs(vars))
                .unwrap_or_else(|e| panic!("{name} would not start: {e}"));
            (name, env, config)
        })
        .collect()
}

#[test]
fn every_function_gets_a_configuration_that_loads_and_passes_the_deploy_check() {
    let configs = configs(&[]);
    assert_eq!(configs.len(), 4);
    for (name, env, config) in &configs {
        assert_eq!(config.deploy_problems(), vec![], "{name}: {env:?}");
        // Without a custom domain the site is the API's own execute-api address.
        assert_eq!(
            config.site_url.as_str(),
            "https://abc123def4.execute-api.us-east-1.amazonaws.com/"
        );
        assert_eq!(
            config.allowed_hosts,
            ["abc123def4.execute-api.us-east-1.amazonaws.com"]
        );
        assert_eq!(
            config.worker_queue_url.as_ref().unwrap().as_str(),
            QUEUE_URL
        );
        assert_eq!(config.database.url.expose(), DATABASE_URL);
    }
    // The superuser's password is given to the deploy hook alone.
    for (name, env, _) in &configs {
        assert_eq!(
            env.contains_key("SUPERUSER_PASSWORD"),
            name == "MigrateFunction",
            "{name}"
        );
    }
}

#[test]
fn a_custom_domain_and_the_optional_parameters_give_a_valid_configuration_too() {
    let configs = configs(&[
        ("DomainName", "app.example.com"),
        (
            "CertificateArn",
            "arn:aws:acm:us-east-1:123456789012:certificate/abc",
        ),
        ("AllowedHosts", "www.example.com,.example.org"),
        ("CorsAllowedOrigins", "https://admin.example.com"),
        ("FromName", "Example Studio"),
        ("TimeZone", "Europe/London"),
        ("SuperuserEmail", "admin@example.com"),
        ("SuperuserPassword", "a-long-deploy-Password-1"),
        (
            "DatabaseSecretVersionId",
            "0b2d4f6a-1111-2222-3333-444455556666",
        ),
        ("SubnetIds", "subnet-1,subnet-2"),
        ("SecurityGroupIds", "sg-1"),
    ]);
    for (name, env, config) in &configs {
        assert_eq!(config.deploy_problems(), vec![], "{name}: {env:?}");
        assert_eq!(config.site_url.as_str(), "https://app.example.com/");
        assert_eq!(
            config.allowed_hosts,
            ["app.example.com", "www.example.com", ".example.org"]
        );
        assert_eq!(config.cors_allowed_origins, ["https://admin.example.com"]);
        assert_eq!(
            config.default_from_email,
            "Example Studio <noreply@example.com>"
        );
        assert_eq!(config.time_zone.name(), "Europe/London");
    }
    let (_, _, migrate) = configs
        .iter()
        .find(|(n, _, _)| n == "MigrateFunction")
        .unwrap();
    assert_eq!(
        migrate.superuser_email.as_ref().unwrap().as_str(),
        "admin@example.com"
    );
}

#[test]
fn every_job_has_exactly_one_schedule_with_its_period_and_every_schedule_names_a_job() {
    let template = template();
    let stack = Stack::new(&template, &[]);
    let mut scheduled = BTreeMap::new();
    for (name, function) in functions(&template) {
        let Some(events) = function["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (event_name, event) in events {
            let kind = event["Type"].as_str().unwrap();
            if !matches!(kind, "Schedule" | "ScheduleV2") {
                continue;
            }
            assert_eq!(name, "SchedulerFunction", "{event_name:?} schedules {name}");
            let props = &event["Properties"];
            let input = stack.eval(&props["Input"]).unwrap();
            let input: Json = serde_json::from_str(input.as_str().unwrap()).unwrap();
            // What the scheduler makes of it once EventBridge Scheduler filled in the tick.
            let delivered: Json = serde_json::from_str(
                &input
                    .to_string()
                    .replace("<aws.scheduler.scheduled-time>", "2026-11-28T09:30:00Z"),
            )
            .unwrap();
            let trigger = scheduler::parse_event(&delivered).unwrap();
            assert!(
                trigger.scheduled_at.is_some(),
                "{event_name:?} gives no tick: {input}"
            );
            let expression = stack.eval(&props["ScheduleExpression"]).unwrap();
            assert!(
                scheduled
                    .insert(trigger.job.clone(), expression.as_str().unwrap().to_owned())
                    .is_none(),
                "{} is scheduled twice",
                trigger.job
            );
            assert!(
                !props["RetryPolicy"].is_null(),
                "{event_name:?} has no RetryPolicy"
            );
            assert!(
                !props["DeadLetterConfig"].is_null(),
                "{event_name:?} has no dead-letter target"
            );
        }
    }
    let expected: BTreeMap<String, String> = JOBS
        .iter()
        .map(|job| (job.name.to_owned(), job.schedule_expression()))
        .collect();
    assert_eq!(scheduled, expected);
}

#[test]
fn the_worker_queue_outlives_the_worker_and_failures_are_reported_per_record() {
    let template = template();
    let resources = &template["Resources"];
    let (_, worker) = functions(&template)
        .into_iter()
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("worker"))
        .unwrap();
    let timeout = property(&template, worker, "Timeout").as_u64().unwrap();
    let events = worker["Properties"]["Events"].as_mapping().unwrap();
    let sqs: Vec<&Yaml> = events
        .values()
        .filter(|e| e["Type"].as_str() == Some("SQS"))
        .collect();
    assert_eq!(sqs.len(), 1);
    let props = &sqs[0]["Properties"];
    assert_eq!(props["BatchSize"].as_u64(), Some(10));
    assert!(
        props["MaximumBatchingWindowInSeconds"]
            .as_u64()
            .is_some_and(|w| w > 0)
    );
    let response_types: Vec<&str> = props["FunctionResponseTypes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(response_types, ["ReportBatchItemFailures"]);
    assert!(!props["ScalingConfig"]["MaximumConcurrency"].is_null());

    let queue_name = match intrinsic(&props["Queue"]).unwrap() {
        (f, Yaml::String(path)) if f == "Fn::GetAtt" => path.split('.').next().unwrap().to_owned(),
        other => panic!("the SQS event's queue should be a GetAtt of a queue: {other:?}"),
    };
    let queue = &resources[queue_name.as_str()]["Properties"];
    let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
    assert!(
        visibility >= 6 * timeout,
        "visibility {visibility} s < 6 x worker timeout {timeout} s"
    );
    let redrive = &queue["RedrivePolicy"];
    assert_eq!(redrive["maxReceiveCount"].as_u64(), Some(5));
    let dlq_name = match intrinsic(&redrive["deadLetterTargetArn"]).unwrap() {
        (_, Yaml::String(path)) => path.split('.').next().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    let dlq = &resources[dlq_name.as_str()]["Properties"];
    assert_eq!(dlq["MessageRetentionPeriod"].as_u64(), Some(14 * 24 * 3600));
}

#[test]
fn each_function_is_built_from_its_crate_for_arm64_and_logs_json_to_a_kept_log_group() {
    let template = template();
    let resources = &template["Resources"];
    let mut binaries = BTreeSet::new();
    for (name, function) in functions(&template) {
        assert_eq!(
            function["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name}"
        );
        let binary = function["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap();
        binaries.insert(binary.to_owned());
        let code_uri = property(&template, function, "CodeUri").as_str().unwrap();
        let manifest = std::fs::read_to_string(root().join(code_uri).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{name}: CodeUri {code_uri} has no Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{name}: {code_uri} is not {binary}"
        );
        assert!(
            root().join(code_uri).join("src/main.rs").exists(),
            "{name}: no binary in {code_uri}"
        );
        assert_eq!(
            property(&template, function, "Runtime").as_str(),
            Some("provided.al2023")
        );
        assert_eq!(
            property(&template, function, "Handler").as_str(),
            Some("bootstrap")
        );
        let arch: Vec<&str> = property(&template, function, "Architectures")
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(arch, ["arm64"], "{name}");
        let logging = &function["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{name}");
        let group = match intrinsic(&logging["LogGroup"]).unwrap() {
            (_, Yaml::String(group)) => group.clone(),
            other => panic!("{other:?}"),
        };
        assert!(
            !resources[group.as_str()]["Properties"]["RetentionInDays"].is_null(),
            "{name}"
        );
    }
    assert_eq!(
        binaries,
        BTreeSet::from(["web", "worker", "scheduler", "migrate"].map(String::from))
    );
}

#[test]
fn the_deploy_hook_matches_its_events_and_the_other_functions_wait_for_it() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let hooks: Vec<(&str, &Yaml)> = resources
        .iter()
        .filter(|(_, r)| {
            r["Type"]
                .as_str()
                .is_some_and(|t| t.starts_with("Custom::"))
        })
        .map(|(n, r)| (n.as_str().unwrap(), r))
        .collect();
    assert_eq!(hooks.len(), 1);
    let (logical_id, hook) = hooks[0];
    for kind in ["create", "update", "delete"] {
        let path = root().join(format!("events/cloudformation-{kind}.json"));
        let event: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(event["LogicalResourceId"], logical_id);
        assert_eq!(event["ResourceType"], hook["Type"].as_str().unwrap());
    }
    let token = format!("{:?}", hook["Properties"]["ServiceToken"]);
    assert!(token.contains("MigrateFunction"), "{token}");
    assert!(
        hook["Properties"]["ServiceTimeout"]
            .as_u64()
            .is_some_and(|t| t <= 900)
    );
    for (name, function) in functions(&template) {
        if name == "MigrateFunction" {
            continue;
        }
        let depends = format!("{:?}", function["DependsOn"]);
        assert!(
            depends.contains(logical_id),
            "{name} does not wait for {logical_id}"
        );
    }
}

#[test]
fn the_http_api_sends_payload_2_0_to_the_web_function_on_the_default_stage() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    let of_type = |t: &str| -> Vec<&Yaml> {
        resources
            .values()
            .filter(|r| r["Type"].as_str() == Some(t))
            .collect()
    };
    let stages = of_type("AWS::ApiGatewayV2::Stage");
    assert_eq!(stages.len(), 1);
    assert_eq!(
        stages[0]["Properties"]["StageName"].as_str(),
        Some("$default")
    );
    let integrations = of_type("AWS::ApiGatewayV2::Integration");
    assert_eq!(integrations.len(), 1);
    let props = &integrations[0]["Properties"];
    assert_eq!(props["PayloadFormatVersion"].as_str(), Some("2.0"));
    assert!(format!("{:?}", props["IntegrationUri"]).contains("WebFunction"));
}

/// (action, the logical id of the resource) for every statement of a role's inline policies
/// whose resource is a `GetAtt <Resource>.Arn`.
fn role_grants(template: &Yaml, role: &str) -> Vec<(String, String)> {
    let mut grants = Vec::new();
    let policies = template["Resources"][role]["Properties"]["Policies"]
        .as_sequence()
        .unwrap();
    for policy in policies {
        for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            let Some((f, Yaml::String(path))) = intrinsic(&statement["Resource"]) else {
                continue;
            };
            assert_eq!(f, "Fn::GetAtt");
            let resource = path.split('.').next().unwrap().to_owned();
            let actions = match &statement["Action"] {
                Yaml::String(a) => vec![a.clone()],
                other => other
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            };
            grants.extend(actions.into_iter().map(|a| (a, resource.clone())));
        }
    }
    grants
}

#[test]
fn the_web_role_may_queue_work_and_manage_the_dead_letter_queue_from_the_admin() {
    let template = template();
    let (_, web) = functions(&template)
        .into_iter()
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some("web"))
        .unwrap();
    let role = match intrinsic(property(&template, web, "Role")).unwrap() {
        (_, Yaml::String(path)) => path.split('.').next().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    let grants = role_grants(&template, &role);
    // What shared::queue (signup, reset, "run now") and shared::services::dead_letters call.
    let needed = [
        ("sqs:SendMessage", "WorkerQueue"),
        ("sqs:GetQueueAttributes", "WorkerQueue"),
        ("sqs:GetQueueUrl", "WorkerDeadLetterQueue"),
        ("sqs:GetQueueAttributes", "WorkerDeadLetterQueue"),
        ("sqs:ReceiveMessage", "WorkerDeadLetterQueue"),
        ("sqs:ChangeMessageVisibility", "WorkerDeadLetterQueue"),
        ("sqs:DeleteMessage", "WorkerDeadLetterQueue"),
    ];
    for (action, resource) in needed {
        assert!(
            grants.iter().any(|(a, r)| a == action && r == resource),
            "{role} lacks {action} on {resource}: {grants:?}"
        );
    }
    // And nothing else on the queues: no receiving from the worker's own queue.
    for (action, resource) in &grants {
        if action.starts_with("sqs:") {
            assert!(
                needed.iter().any(|(a, r)| a == action && r == resource),
                "{role} has {action} on {resource}, which nothing in web calls"
            );
        }
    }
}
