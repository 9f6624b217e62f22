//! template.yaml held against the code: the schedules against the job registry, each
//! function's environment (with its secrets read the way `shared::secrets` reads them) against
//! what `Config` needs in Lambda (and `check`'s production rules), the queue and its
//! dead-letter queue against the worker, the deploy hook against its CloudFormation events,
//! each function against the crate that builds it, and the database, network, secrets and
//! alarms against what docs/deploy.md promises (data kept, no secret in an environment
//! variable, no hang on deploy or delete).
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
use shared::secrets;

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
/// The password in the sample database secrets: RDS generates punctuation too.
const DATABASE_PASSWORD: &str = "p@ss:w/rd!1";
const EXISTING_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:starter/database-AbCdEf";
/// The parameters of an existing database outside any VPC.
const EXISTING: &[(&str, &str)] = &[
    ("DatabaseMode", "existing"),
    ("ExistingDatabaseSecretArn", EXISTING_SECRET_ARN),
];
/// The parameters of an existing database in a VPC, with the stack's endpoints.
const EXISTING_IN_VPC: &[(&str, &str)] = &[
    ("DatabaseMode", "existing"),
    ("ExistingDatabaseSecretArn", EXISTING_SECRET_ARN),
    ("ExistingVpcId", "vpc-1"),
    ("ExistingSubnetIds", "subnet-1,subnet-2"),
    ("ExistingSecurityGroupId", "sg-1"),
    ("ExistingRouteTableIds", "rtb-1"),
    ("CreateVpcEndpoints", "true"),
];
const AURORA_WITH_PROXY: &[(&str, &str)] = &[
    ("DatabaseEngine", "aurora-serverless"),
    ("UseRdsProxy", "true"),
];

/// The sample ARN of the secret RDS manages for `resource`'s master user.
fn managed_secret_arn(resource: &str) -> String {
    format!(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!{}-0a1b2c3d-AbCdEf",
        resource.to_lowercase()
    )
}

/// The template's parameters and conditions, for evaluating intrinsic functions.
struct Stack<'a> {
    template: &'a Yaml,
    parameters: BTreeMap<String, Json>,
}

impl<'a> Stack<'a> {
    /// The parameters' defaults, sample values for those without one, then `overrides`.
    fn new(template: &'a Yaml, overrides: &[(&str, &str)]) -> Self {
        let samples = [("FromEmail", "noreply@example.com")];
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
                let (resource, attribute) = path.split_once('.').unwrap();
                assert!(
                    !self.template["Resources"][resource].is_null(),
                    "GetAtt of unknown {resource}"
                );
                // Endpoints are host names the configuration parses; the master secret RDS
                // manages has an ARN the template takes apart.
                if attribute == "Endpoint" || attribute == "Endpoint.Address" {
                    json!(format!(
                        "{}.c1a2b3c4d5e6.us-east-1.rds.amazonaws.com",
                        resource.to_lowercase()
                    ))
                } else if attribute == "MasterUserSecret.SecretArn" {
                    json!(managed_secret_arn(resource))
                } else {
                    json!(format!("getatt:{path}"))
                }
            }
            "Fn::GetAZs" => json!(["us-east-1a", "us-east-1b", "us-east-1c"]),
            "Fn::Cidr" => json!(["10.20.0.0/24", "10.20.1.0/24"]),
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
            let value = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
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
            let mut vars = Vars::from_pairs(env.clone());
            vars.set("AWS_LAMBDA_FUNCTION_NAME", format!("starter-{name}"));
            // What shared::secrets does at init with the secrets the ARNs name.
            for var in env.keys().filter(|v| v.ends_with("_SECRET_ARN")) {
                secrets::apply(&mut vars, var, &sample_secret(var, &env))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            let config = Config::from_vars(&Profile::Lambda, &vars)
                .unwrap_or_else(|e| panic!("{name} would not start: {e}"));
            (name, env, config)
        })
        .collect()
}

/// What Secrets Manager would return for the secret `var` names: the master secret RDS manages
/// (username and password only) when the stack says where the database is, else an existing
/// database's secret in RDS's rotation shape; a generated key or password otherwise.
fn sample_secret(var: &str, env: &BTreeMap<String, String>) -> String {
    match var {
        "DATABASE_SECRET_ARN" if env.contains_key("RDS_HOSTNAME") => {
            json!({"username": "app", "password": DATABASE_PASSWORD}).to_string()
        }
        "DATABASE_SECRET_ARN" => json!({
            "username": "app", "password": DATABASE_PASSWORD, "engine": "postgres",
            "host": "db.example.com", "port": 5432, "dbname": "app"
        })
        .to_string(),
        "SECRET_KEY_SECRET_ARN" => {
            "k8Jq2vX9mN4pL7rT1wY6zB3cF5hD0gS8aE2uI9oP4lK7jH1mN6bV3cXy2Wq5Er8T".into()
        }
        "SUPERUSER_PASSWORD_SECRET_ARN" => "Zq7Wm3Kp9Xr2Lt6Vn4Bh8Jd1".into(),
        other => panic!("no sample for {other}"),
    }
}

/// The database URL a configuration ends up with, as (user, password, host, port, database).
fn database_target(config: &Config) -> (String, String, String, u16, String) {
    let url = url::Url::parse(config.database.url.expose()).unwrap();
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    (
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
        url.host_str().unwrap().to_owned(),
        url.port().unwrap_or(5432),
        url.path().trim_start_matches('/').to_owned(),
    )
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
        // The database the stack created, with the master secret RDS manages; TLS verified
        // against the RDS certificate authorities.
        assert_eq!(
            database_target(config),
            (
                "app".into(),
                DATABASE_PASSWORD.into(),
                "databaseinstance.c1a2b3c4d5e6.us-east-1.rds.amazonaws.com".into(),
                5432,
                "app".into()
            ),
            "{name}"
        );
        assert!(config.database.ca_bundle.is_some(), "{name}");
        // RDS: the code's acquire timeout (Aurora's resume needs more, below).
        assert!(!env.contains_key("DATABASE_ACQUIRE_TIMEOUT"), "{name}");
    }
    // Without SuperuserEmail there is no superuser, and no password for one.
    for (name, env, _) in &configs {
        assert!(!env.contains_key("SUPERUSER_PASSWORD_SECRET_ARN"), "{name}");
    }
}

#[test]
fn aurora_behind_rds_proxy_and_an_existing_database_give_valid_configurations_too() {
    let proxy_host = "databaseproxy.c1a2b3c4d5e6.us-east-1.rds.amazonaws.com";
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
    let cases: [Case; 4] = [
        (
            "aurora behind RDS Proxy",
            AURORA_WITH_PROXY,
            proxy_host,
            Some("20"),
        ),
        (
            "aurora",
            &[("DatabaseEngine", "aurora-serverless")],
            "databasecluster.c1a2b3c4d5e6.us-east-1.rds.amazonaws.com",
            Some("20"),
        ),
        ("existing, public", EXISTING, "db.example.com", None),
        (
            "existing, in a VPC",
            EXISTING_IN_VPC,
            "db.example.com",
            None,
        ),
    ];
    for (case, overrides, host, acquire_timeout) in cases {
        for (name, env, config) in configs(overrides) {
            assert_eq!(config.deploy_problems(), vec![], "{case}: {name}: {env:?}");
            let (user, password, actual_host, port, database) = database_target(&config);
            assert_eq!(
                (
                    user.as_str(),
                    password.as_str(),
                    actual_host.as_str(),
                    port,
                    database.as_str()
                ),
                ("app", DATABASE_PASSWORD, host, 5432, "app"),
                "{case}: {name}"
            );
            assert_eq!(
                env.get("DATABASE_ACQUIRE_TIMEOUT").map(String::as_str),
                acquire_timeout,
                "{case}: {name}"
            );
            // ExistingDatabaseCaBundle's default keeps TLS verified.
            assert!(config.database.ca_bundle.is_some(), "{case}: {name}");
            if overrides.contains(&("DatabaseMode", "existing")) {
                assert_eq!(env["DATABASE_SECRET_ARN"], EXISTING_SECRET_ARN, "{case}");
                for var in ["RDS_HOSTNAME", "RDS_PORT", "RDS_DB_NAME"] {
                    assert!(!env.contains_key(var), "{case}: {name} sets {var}");
                }
            }
        }
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
        ("WebMaxConcurrency", "0"),
        ("EndpointAvailabilityZones", "2"),
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
    assert!(migrate.superuser_password.is_some());
    // The superuser's generated password reaches the deploy hook alone.
    for (name, env, _) in &configs {
        assert_eq!(
            env.contains_key("SUPERUSER_PASSWORD_SECRET_ARN"),
            name == "MigrateFunction",
            "{name}"
        );
    }
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

// ---------------------------------------------------------------- database, network, secrets

/// Whether `name` exists for these parameters (no Condition, or one that holds).
fn exists(stack: &Stack, name: &str) -> bool {
    let resource = &stack.template["Resources"][name];
    assert!(!resource.is_null(), "no resource {name}");
    resource["Condition"]
        .as_str()
        .is_none_or(|condition| stack.condition(condition))
}

fn resources_of<'t>(template: &'t Yaml, kind: &str) -> Vec<(String, &'t Yaml)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap().to_owned(), r))
        .collect()
}

/// The logical ids an evaluated value references (`ref:X`, `getatt:X.Attribute`).
fn referenced(value: &Json) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    match value {
        Json::String(s) => {
            if let Some(target) = s.strip_prefix("ref:").or_else(|| s.strip_prefix("getatt:")) {
                names.insert(target.split('.').next().unwrap().to_owned());
            }
        }
        Json::Array(items) => items.iter().for_each(|v| names.extend(referenced(v))),
        Json::Object(map) => map.values().for_each(|v| names.extend(referenced(v))),
        _ => {}
    }
    names
}

/// Every parameter set the tests below hold the template to.
const SCENARIOS: &[(&str, &[(&str, &str)])] = &[
    ("default (RDS)", &[]),
    ("Aurora behind RDS Proxy", AURORA_WITH_PROXY),
    ("RDS behind RDS Proxy", &[("UseRdsProxy", "true")]),
    ("existing database, public", EXISTING),
    ("existing database in a VPC", EXISTING_IN_VPC),
    (
        "with a superuser",
        &[("SuperuserEmail", "admin@example.com")],
    ),
];

#[test]
fn the_database_and_its_private_network_are_created_by_default_and_left_out_for_an_existing_one() {
    let template = template();
    // No way out to the internet, and nothing that would bill a public IPv4 address.
    for kind in [
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::Route",
    ] {
        assert!(resources_of(&template, kind).is_empty(), "{kind}");
    }
    let created = [
        "Vpc",
        "PrivateSubnet1",
        "PrivateSubnet2",
        "PrivateRouteTable",
        "FunctionSecurityGroup",
        "DatabaseSecurityGroup",
        "DatabaseSubnetGroup",
        "DatabaseInstance",
    ];
    let endpoints = [
        "SqsEndpoint",
        "SesEndpoint",
        "SecretsManagerEndpoint",
        "S3Endpoint",
    ];
    let aurora_and_proxy = [
        "DatabaseCluster",
        "DatabaseClusterInstance",
        "DatabaseProxy",
        "DatabaseProxyTargetGroup",
    ];
    let in_vpc = |stack: &Stack| {
        stack
            .eval(&template["Globals"]["Function"]["VpcConfig"])
            .is_some()
    };

    let stack = Stack::new(&template, &[]);
    for name in created.iter().chain(&endpoints) {
        assert!(exists(&stack, name), "default: {name} is missing");
    }
    for name in aurora_and_proxy {
        assert!(!exists(&stack, name), "default: {name} is created");
    }
    assert!(in_vpc(&stack));
    let vpc = stack
        .eval(&template["Resources"]["Vpc"]["Properties"])
        .unwrap();
    assert_eq!(vpc["EnableDnsSupport"], json!("true"));
    assert_eq!(vpc["EnableDnsHostnames"], json!("true"));
    let zones: BTreeSet<String> = ["PrivateSubnet1", "PrivateSubnet2"]
        .iter()
        .map(|s| {
            let zone = &template["Resources"][*s]["Properties"]["AvailabilityZone"];
            stack.eval(zone).unwrap().to_string()
        })
        .collect();
    assert_eq!(zones.len(), 2, "the subnets share a zone");

    let stack = Stack::new(&template, AURORA_WITH_PROXY);
    for name in aurora_and_proxy {
        assert!(exists(&stack, name), "aurora with proxy: {name} is missing");
    }
    assert!(!exists(&stack, "DatabaseInstance"));

    let stack = Stack::new(&template, EXISTING);
    for name in created.iter().chain(&endpoints).chain(&aurora_and_proxy) {
        assert!(!exists(&stack, name), "existing, public: {name} is created");
    }
    assert!(!in_vpc(&stack));

    let stack = Stack::new(&template, EXISTING_IN_VPC);
    for name in created.iter().chain(&aurora_and_proxy) {
        assert!(
            !exists(&stack, name),
            "existing in a VPC: {name} is created"
        );
    }
    for name in endpoints {
        assert!(exists(&stack, name), "existing in a VPC: {name} is missing");
    }
    assert!(in_vpc(&stack));
}

#[test]
fn no_environment_variable_and_no_parameter_holds_a_secret() {
    let template = template();
    for (name, spec) in template["Parameters"].as_mapping().unwrap() {
        assert!(spec["NoEcho"].is_null(), "{name:?} is a secret parameter");
    }
    let forbidden = [
        "SECRET_KEY",
        "DATABASE_URL",
        "SUPERUSER_PASSWORD",
        "RDS_PASSWORD",
        "RDS_USERNAME",
    ];
    for (scenario, overrides) in SCENARIOS {
        let stack = Stack::new(&template, overrides);
        for (name, function) in functions(&template) {
            let env = environment(&stack, function);
            // Declared blank at most (for `sam local invoke --env-vars`; blank counts as unset).
            for var in forbidden {
                assert!(
                    env.get(var).is_none_or(|v| v.is_empty()),
                    "{scenario}: {name} sets {var}"
                );
            }
            for var in ["DATABASE_SECRET_ARN", "SECRET_KEY_SECRET_ARN"] {
                assert!(env.contains_key(var), "{scenario}: {name} lacks {var}");
            }
            for (var, value) in env.iter().filter(|(v, _)| v.ends_with("_SECRET_ARN")) {
                let is_reference = value.starts_with("ref:")
                    || value.starts_with("getatt:")
                    || *value == managed_secret_arn("DatabaseInstance")
                    || *value == managed_secret_arn("DatabaseCluster")
                    || value == EXISTING_SECRET_ARN; // the ExistingDatabaseSecretArn parameter
                assert!(
                    is_reference,
                    "{scenario}: {name}'s {var} is {value:?}, not a secret's ARN"
                );
            }
        }
    }
}

/// The resources of the `secretsmanager:GetSecretValue` statements a role has, inline or
/// through a managed policy of this template, as evaluated, and whether it may call
/// `BatchGetSecretValue` (which takes no resource: only `*`, and returns only the secrets
/// GetSecretValue allows); any other Secrets Manager or KMS action fails.
fn secrets_a_role_may_read(stack: &Stack, role: &str) -> (BTreeSet<String>, bool) {
    let role = stack
        .eval(&stack.template["Resources"][role]["Properties"])
        .unwrap();
    let mut documents: Vec<Json> = role["Policies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["PolicyDocument"].clone())
        .collect();
    for arn in role["ManagedPolicyArns"].as_array().into_iter().flatten() {
        if let Some(name) = arn.as_str().unwrap().strip_prefix("ref:") {
            let policy = &stack.template["Resources"][name];
            assert_eq!(policy["Type"].as_str(), Some("AWS::IAM::ManagedPolicy"));
            documents.push(stack.eval(&policy["Properties"]["PolicyDocument"]).unwrap());
        }
    }
    let mut readable = BTreeSet::new();
    let mut batch = false;
    for statement in documents
        .iter()
        .flat_map(|d| d["Statement"].as_array().unwrap())
    {
        let actions: Vec<&str> = match &statement["Action"] {
            Json::String(a) => vec![a.as_str()],
            other => other
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect(),
        };
        for action in actions {
            if action == "secretsmanager:GetSecretValue" {
                let resources = match &statement["Resource"] {
                    Json::String(r) => vec![r.clone()],
                    other => other
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                        .collect(),
                };
                readable.extend(resources);
            } else if action == "secretsmanager:BatchGetSecretValue" {
                assert_eq!(
                    statement["Resource"], "*",
                    "BatchGetSecretValue has no resource"
                );
                batch = true;
            } else {
                assert!(
                    !action.starts_with("secretsmanager:") && !action.starts_with("kms:"),
                    "{action}"
                );
            }
        }
    }
    (readable, batch)
}

#[test]
fn each_role_may_read_exactly_the_secrets_its_function_is_given() {
    let template = template();
    for (scenario, overrides) in SCENARIOS {
        let stack = Stack::new(&template, overrides);
        let in_vpc = stack
            .eval(&template["Globals"]["Function"]["VpcConfig"])
            .is_some();
        for (name, function) in functions(&template) {
            let env = environment(&stack, function);
            let given: BTreeSet<String> = env
                .iter()
                .filter(|(var, _)| var.ends_with("_SECRET_ARN"))
                .map(|(_, arn)| arn.clone())
                .collect();
            let role = match intrinsic(property(&template, function, "Role")).unwrap() {
                (_, Yaml::String(path)) => path.split('.').next().unwrap().to_owned(),
                other => panic!("{other:?}"),
            };
            let (readable, batch) = secrets_a_role_may_read(&stack, &role);
            // shared::secrets reads a function's secrets in one BatchGetSecretValue call.
            assert_eq!(batch, !given.is_empty(), "{scenario}: {role}");
            assert!(
                !readable.iter().any(|r| r.contains('*')),
                "{scenario}: {role}"
            );
            assert_eq!(readable, given, "{scenario}: {role} and {name}'s variables");
            // The VPC permissions only when the functions run in one.
            let managed = stack
                .eval(&template["Resources"][role.as_str()]["Properties"]["ManagedPolicyArns"])
                .unwrap();
            let vpc_policy = managed.as_array().unwrap().iter().any(|arn| {
                arn.as_str()
                    .unwrap()
                    .ends_with("/AWSLambdaVPCAccessExecutionRole")
            });
            assert_eq!(vpc_policy, in_vpc, "{scenario}: {role}");
        }
    }
}

#[test]
fn every_database_is_encrypted_has_a_managed_password_and_leaves_a_snapshot_when_deleted_or_replaced()
 {
    let template = template();
    let stack = Stack::new(&template, &[]);
    let instances = resources_of(&template, "AWS::RDS::DBInstance");
    let clusters = resources_of(&template, "AWS::RDS::DBCluster");
    assert!(!instances.is_empty() && !clusters.is_empty());
    for (name, resource) in instances.iter().chain(&clusters) {
        assert_eq!(
            resource["DeletionPolicy"].as_str(),
            Some("Snapshot"),
            "{name}"
        );
        assert_eq!(
            resource["UpdateReplacePolicy"].as_str(),
            Some("Snapshot"),
            "{name}"
        );
        let props = stack.eval(&resource["Properties"]).unwrap();
        if props.get("DBClusterIdentifier").is_some() {
            // An Aurora instance: storage, password and backups are its cluster's.
            assert_eq!(props["PubliclyAccessible"], json!("false"), "{name}");
            assert_eq!(
                props["CACertificateIdentifier"],
                json!("rds-ca-rsa2048-g1"),
                "{name}"
            );
            continue;
        }
        assert_eq!(props["StorageEncrypted"], json!("true"), "{name}");
        assert_eq!(props["ManageMasterUserPassword"], json!("true"), "{name}");
        assert!(props.get("MasterUserPassword").is_none(), "{name}");
        assert_eq!(props["DeletionProtection"], json!("true"), "{name}");
        assert_eq!(props["BackupRetentionPeriod"], json!("7"), "{name}");
        assert_eq!(props["CopyTagsToSnapshot"], json!("true"), "{name}");
        if resource["Type"].as_str() == Some("AWS::RDS::DBInstance") {
            assert_eq!(props["PubliclyAccessible"], json!("false"), "{name}");
            assert_eq!(
                props["CACertificateIdentifier"],
                json!("rds-ca-rsa2048-g1"),
                "{name}"
            );
        }
    }
    // Plaintext refused by the server; idle connections of frozen instances closed.
    for kind in [
        "AWS::RDS::DBParameterGroup",
        "AWS::RDS::DBClusterParameterGroup",
    ] {
        for (name, group) in resources_of(&template, kind) {
            let parameters = &group["Properties"]["Parameters"];
            assert_eq!(scalar(&parameters["rds.force_ssl"]), "1", "{name}");
            assert!(!parameters["idle_session_timeout"].is_null(), "{name}");
        }
    }
}

#[test]
fn the_database_admits_postgresql_only_from_the_functions_and_rds_proxy() {
    let template = template();
    let stack = Stack::new(&template, AURORA_WITH_PROXY);
    let group = "DatabaseSecurityGroup";
    assert!(
        template["Resources"][group]["Properties"]["SecurityGroupIngress"].is_null(),
        "{group}'s ingress is written as separate resources"
    );
    let mut sources = BTreeSet::new();
    for (name, rule) in resources_of(&template, "AWS::EC2::SecurityGroupIngress") {
        let props = stack.eval(&rule["Properties"]).unwrap();
        if props["GroupId"] != json!(format!("ref:{group}")) {
            continue;
        }
        assert_eq!(props["IpProtocol"], json!("tcp"), "{name}");
        assert_eq!(props["FromPort"], json!("5432"), "{name}");
        assert_eq!(props["ToPort"], json!("5432"), "{name}");
        for open in ["CidrIp", "CidrIpv6", "SourcePrefixListId"] {
            assert!(props.get(open).is_none(), "{name} admits {open}");
        }
        sources.insert(props["SourceSecurityGroupId"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        sources,
        BTreeSet::from([
            "ref:FunctionSecurityGroup".into(),
            "ref:ProxySecurityGroup".into()
        ])
    );
    // The group guards every database of the stack, and the proxy's group only the functions.
    for (name, resource) in resources_of(&template, "AWS::RDS::DBInstance")
        .into_iter()
        .chain(resources_of(&template, "AWS::RDS::DBCluster"))
    {
        let props = stack.eval(&resource["Properties"]).unwrap();
        if props.get("DBClusterIdentifier").is_some() {
            continue;
        }
        let groups = props
            .get("VPCSecurityGroups")
            .or_else(|| props.get("VpcSecurityGroupIds"))
            .unwrap();
        assert_eq!(groups, &json!([format!("ref:{group}")]), "{name}");
    }
    let proxy = stack.eval(&template["Resources"]["ProxyIngressFromFunctions"]["Properties"]);
    assert_eq!(
        proxy.unwrap()["SourceSecurityGroupId"],
        json!("ref:FunctionSecurityGroup")
    );
}

#[test]
fn the_deploy_hook_waits_for_everything_it_needs_to_answer_so_it_can_answer_a_delete_too() {
    let template = template();
    let resources = &template["Resources"];
    let (hook_name, hook) = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .find(|(_, r)| {
            r["Type"]
                .as_str()
                .is_some_and(|t| t.starts_with("Custom::"))
        })
        .unwrap();
    let migrate = "MigrateFunction";
    assert!(format!("{:?}", hook["Properties"]["ServiceToken"]).contains(migrate));
    // SAM generates <function>EventInvokeConfig from the function's EventInvokeConfig.
    let retries = &resources[migrate]["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"];
    assert_eq!(retries.as_u64(), Some(0));
    let depends: Vec<String> = match &hook["DependsOn"] {
        Yaml::String(one) => vec![one.clone()],
        many => many
            .as_sequence()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect(),
    };
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 4] = [
        (
            "default (RDS)",
            &[],
            &[
                "S3Endpoint",
                "SecretsManagerEndpoint",
                "DatabaseInstance",
                "DatabaseIngressFromFunctions",
            ],
        ),
        (
            "Aurora behind RDS Proxy",
            AURORA_WITH_PROXY,
            &[
                "S3Endpoint",
                "SecretsManagerEndpoint",
                "DatabaseCluster",
                "DatabaseClusterInstance",
                "DatabaseIngressFromFunctions",
                "DatabaseProxy",
                "DatabaseProxyTargetGroup",
                "ProxyIngressFromFunctions",
                "DatabaseIngressFromProxy",
            ],
        ),
        (
            "existing database in a VPC",
            EXISTING_IN_VPC,
            &[
                "S3Endpoint",
                "SecretsManagerEndpoint",
                "EndpointIngressFromFunctions",
            ],
        ),
        ("existing database, public", EXISTING, &[]),
    ];
    for (scenario, overrides, needed) in cases {
        let stack = Stack::new(&template, overrides);
        let mut waits_for = BTreeSet::new();
        for name in &depends {
            let resource = &resources[name.as_str()];
            assert!(
                !resource.is_null() || *name == format!("{migrate}EventInvokeConfig"),
                "{hook_name:?} depends on unknown {name}"
            );
            waits_for.insert(name.clone());
            if resource["Type"].as_str() == Some("AWS::CloudFormation::WaitConditionHandle") {
                assert!(
                    resource["Condition"].is_null(),
                    "the gate {name} is conditional"
                );
                waits_for.extend(referenced(&stack.eval(&resource["Metadata"]).unwrap()));
            }
        }
        assert!(
            waits_for.contains(&format!("{migrate}EventInvokeConfig")),
            "{scenario}: {waits_for:?}"
        );
        for name in needed {
            assert!(
                waits_for.contains(*name),
                "{scenario}: {hook_name:?} does not wait for {name}"
            );
        }
        // And the gate names nothing these parameters leave out.
        for name in &waits_for {
            if !resources[name.as_str()].is_null() {
                assert!(
                    exists(&stack, name),
                    "{scenario}: the gate names absent {name}"
                );
            }
        }
        // A new database, engine, proxy or secret changes the hook's version description, so
        // SAM's version is replaced and the hook runs again with the new configuration.
        let description = stack
            .eval(&resources[migrate]["Properties"]["VersionDescription"])
            .unwrap();
        let description = description.as_str().unwrap();
        assert!(
            description.len() <= 256 - 100 + "admin@example.com".len(),
            "{description}"
        );
        let env = environment(&stack, &resources[migrate]);
        if let Some(host) = env.get("RDS_HOSTNAME") {
            let label = host.split('.').next().unwrap();
            assert!(description.contains(label), "{scenario}: {description}");
        }
        let secret = env["DATABASE_SECRET_ARN"]
            .split(':')
            .nth(6)
            .unwrap()
            .to_owned();
        assert!(description.contains(&secret), "{scenario}: {description}");
    }
}

#[test]
fn the_web_function_and_the_api_are_capped_and_slow_queues_throttles_and_5xx_rates_alarm() {
    let template = template();
    let web = &template["Resources"]["WebFunction"]["Properties"]["ReservedConcurrentExecutions"];
    assert_eq!(Stack::new(&template, &[]).eval(web), Some(json!("40")));
    assert_eq!(
        Stack::new(&template, &[("WebMaxConcurrency", "0")]).eval(web),
        None
    );
    let stack = Stack::new(&template, &[]);
    let (_, stage) = &resources_of(&template, "AWS::ApiGatewayV2::Stage")[0];
    let throttling = stack
        .eval(&stage["Properties"]["DefaultRouteSettings"])
        .unwrap();
    assert!(throttling["ThrottlingRateLimit"].as_str().is_some());
    assert!(throttling["ThrottlingBurstLimit"].as_str().is_some());

    let alarms: Vec<Json> = resources_of(&template, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| stack.eval(&a["Properties"]).unwrap())
        .collect();
    for alarm in &alarms {
        assert_eq!(alarm["AlarmActions"], json!(["ref:AlarmTopic"]));
    }
    let single = |metric: &str, dimension: Json| {
        alarms
            .iter()
            .any(|a| a["MetricName"] == json!(metric) && a["Dimensions"][0]["Value"] == dimension)
    };
    assert!(single(
        "ApproximateAgeOfOldestMessage",
        json!("getatt:WorkerQueue.QueueName")
    ));
    assert!(single("Throttles", json!("ref:WebFunction")));
    // 5xx as a share of the requests, not any single 5xx.
    assert!(!alarms.iter().any(|a| a["MetricName"] == json!("5xx")));
    let rate = alarms
        .iter()
        .find(|a| a["Metrics"].is_array())
        .expect("a metric math alarm");
    let metrics = rate["Metrics"].as_array().unwrap();
    let names: BTreeSet<&str> = metrics
        .iter()
        .filter_map(|m| m["MetricStat"]["Metric"]["MetricName"].as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["5xx", "Count"]));
    let expression = metrics
        .iter()
        .find_map(|m| m["Expression"].as_str())
        .unwrap();
    assert!(expression.contains('/'), "{expression}");
    assert_eq!(rate["Threshold"], json!("5"));
}

// ---------------------------------------------------------------- operations: metrics, traces

/// The dashboard's body for these parameters, parsed.
fn dashboard(stack: &Stack) -> Json {
    let (_, dashboard) = &resources_of(stack.template, "AWS::CloudWatch::Dashboard")[0];
    let body = stack
        .eval(&dashboard["Properties"]["DashboardBody"])
        .unwrap();
    let body = body.as_str().expect("DashboardBody is a string");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}\n{body}"))
}

/// Every metric a dashboard's widgets show: (namespace, name, dimension values) for plain
/// metrics, and (the expression, "", []) for metric math.
fn dashboard_metrics(body: &Json) -> Vec<(String, String, Vec<String>)> {
    let mut found = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            if let Some(expression) = row[0]["expression"].as_str() {
                found.push((expression.to_owned(), String::new(), Vec::new()));
                continue;
            }
            let strings: Vec<String> = row
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            // [namespace, name, dimension, value, dimension, value, ..., {options}]
            let values = strings[2..].iter().skip(1).step_by(2).cloned().collect();
            found.push((strings[0].clone(), strings[1].clone(), values));
        }
    }
    found
}

#[test]
fn the_dashboard_shows_traffic_latency_cold_starts_the_queue_emails_jobs_and_the_database() {
    let template = template();
    let stack = Stack::new(&template, &[]);
    let body = dashboard(&stack);
    let metrics = dashboard_metrics(&body);
    let shows = |namespace: &str, name: &str, dimension: &str| {
        metrics
            .iter()
            .any(|(ns, n, d)| ns == namespace && n == name && d.iter().any(|v| v == dimension))
    };
    let api = API_ID;
    for name in ["Count", "4xx", "5xx", "Latency"] {
        assert!(shows("AWS/ApiGateway", name, api), "API {name}");
    }
    assert!(shows("AWS/Lambda", "Duration", "ref:WebFunction"));
    let stats: BTreeSet<&str> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["properties"]["metrics"].as_array().unwrap())
        .filter_map(|row| row.as_array().unwrap().last().unwrap()["stat"].as_str())
        .collect();
    assert!(stats.contains("p50") && stats.contains("p99"), "{stats:?}");
    for function in ["WebFunction", "WorkerFunction", "SchedulerFunction"] {
        assert!(
            shows("starter", "ColdStarts", &format!("ref:{function}")),
            "{function}'s cold starts"
        );
    }
    let queue = "getatt:WorkerQueue.QueueName";
    assert!(shows(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        queue
    ));
    assert!(shows("AWS/SQS", "ApproximateAgeOfOldestMessage", queue));
    // The app's own metrics are all on it, in the stack's namespace: plain, or searched by
    // their one dimension.
    for metric in shared::metrics::Metric::ALL {
        let name = metric.name();
        let plain = metrics
            .iter()
            .any(|(ns, n, _)| ns == "starter" && n == name);
        let searched = metrics.iter().any(|(expression, _, _)| {
            expression.contains("{starter,") && expression.contains(&format!("\"{name}\""))
        });
        assert!(plain || searched, "{name} is not on the dashboard");
    }
    // Database connections exactly when the stack has the database, and the proxy's with it.
    let connections = |overrides: &[(&str, &str)]| {
        let metrics = dashboard_metrics(&dashboard(&Stack::new(&template, overrides)));
        metrics
            .into_iter()
            .filter(|(ns, n, _)| ns == "AWS/RDS" && n.ends_with("Connections"))
            .map(|(_, n, d)| format!("{n} {}", d.join(",")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        connections(&[]),
        ["DatabaseConnections ref:DatabaseInstance"]
    );
    assert_eq!(
        connections(AURORA_WITH_PROXY),
        [
            "DatabaseConnections ref:DatabaseCluster",
            "ClientConnections starter-proxy",
            "DatabaseConnections starter-proxy"
        ]
    );
    assert!(connections(EXISTING).is_empty());
}

#[test]
fn saved_queries_search_the_function_logs_by_the_ids_the_lines_carry() {
    let template = template();
    let stack = Stack::new(&template, &[]);
    let queries: Vec<Json> = resources_of(&template, "AWS::Logs::QueryDefinition")
        .into_iter()
        .map(|(_, q)| stack.eval(&q["Properties"]).unwrap())
        .collect();
    assert!(queries.len() >= 4, "{queries:#?}");
    for query in &queries {
        let name = query["Name"].as_str().unwrap();
        assert!(
            name.starts_with("starter/"),
            "{name}: not named after the stack"
        );
        let groups = query["LogGroupNames"].as_array().unwrap();
        assert!(!groups.is_empty(), "{name}");
        for group in groups {
            let group = group.as_str().unwrap().strip_prefix("ref:").unwrap();
            assert_eq!(
                template["Resources"][group]["Type"].as_str(),
                Some("AWS::Logs::LogGroup"),
                "{name}: {group}"
            );
        }
    }
    let text = |q: &Json| q["QueryString"].as_str().unwrap().to_owned();
    // One query finds every line of a request across the access log and the functions.
    let one = queries
        .iter()
        .find(|q| text(q).contains("@message like"))
        .expect("a query by id");
    let groups: BTreeSet<&str> = one["LogGroupNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    for group in [
        "ref:ApiAccessLogGroup",
        "ref:WebLogGroup",
        "ref:WorkerLogGroup",
    ] {
        assert!(groups.contains(group), "{group} not searched: {groups:?}");
    }
    // The fields the queries read are the ones the code writes.
    let all: String = queries.iter().map(text).collect();
    for field in [
        "platform.report",
        "initDurationMs",
        "JobRuns",
        "EmailsSent",
        "Kind",
        "tick",
    ] {
        assert!(all.contains(field), "no query reads {field}");
    }
}

#[test]
fn functions_are_traced_by_default_with_the_permission_to_send_and_metrics_go_to_the_stacks_namespace()
 {
    let template = template();
    for (tracing, active) in [("Active", true), ("PassThrough", false)] {
        let stack = Stack::new(&template, &[("Tracing", tracing)]);
        for (name, function) in functions(&template) {
            assert_eq!(
                stack.eval(property(&template, function, "Tracing")),
                Some(json!(tracing)),
                "{name}"
            );
            let role = match intrinsic(property(&template, function, "Role")).unwrap() {
                (_, Yaml::String(path)) => path.split('.').next().unwrap().to_owned(),
                other => panic!("{other:?}"),
            };
            let policies = stack
                .eval(&template["Resources"][role.as_str()]["Properties"]["ManagedPolicyArns"])
                .unwrap();
            let xray = policies.as_array().unwrap().iter().any(|p| {
                p.as_str()
                    .unwrap()
                    .ends_with(":policy/AWSXRayDaemonWriteAccess")
            });
            assert_eq!(xray, active, "{name} ({role}) with Tracing={tracing}");
        }
    }
    assert_eq!(
        template["Parameters"]["Tracing"]["Default"].as_str(),
        Some("Active")
    );
    // HTTP APIs have no X-Ray setting (REST APIs' TracingEnabled does not exist here).
    let (_, stage) = &resources_of(&template, "AWS::ApiGatewayV2::Stage")[0];
    assert!(stage["Properties"]["TracingEnabled"].is_null());

    for (name, env, config) in configs(&[]) {
        assert_eq!(env["METRICS_NAMESPACE"], "starter", "{name}");
        assert_eq!(config.metrics_namespace, "starter", "{name}");
    }
}
