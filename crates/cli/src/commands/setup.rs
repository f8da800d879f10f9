//! `kinarch setup <stream> <ALL|LATEST> [region]`.

use std::io::{BufRead, IsTerminal, Write};

use aws_config::SdkConfig;
use kinarch_core::aws::tables::Billing;
use kinarch_core::setup::{
    BucketChange, ColdChange, Setup, SetupAction, SetupPlan, SetupReport, SetupRequest, SetupStep,
    StepStatus, TtlChange,
};
use kinarch_core::{ArchiveTtl, StreamArchiveConfig};
use serde_json::{Value, json};

use crate::cli::values::parse_capacity;
use crate::cli::{BillingArg, GlobalArgs, SetupArgs, SummaryFormat};
use crate::failure::Failure;
use crate::output::print_json;
use crate::prompt::Prompter;

/// Capacity units of a provisioned table when none are given.
const DEFAULT_CAPACITY: u64 = 5;

/// Plans, asks (on a terminal), applies and prints what was done.
pub(crate) async fn run(
    sdk: &SdkConfig,
    global: &GlobalArgs,
    args: SetupArgs,
) -> Result<(), Failure> {
    let setup = Setup::new(sdk);
    let json = args.output == SummaryFormat::Json;
    // A script that asks for JSON gets no questions.
    let interactive = std::io::stdin().is_terminal() && !args.yes && !args.dry_run && !json;
    let mut request = SetupRequest::new(args.stream.name.clone(), args.mode);
    request.table = args.table.clone();
    request.ttl = match (args.ttl_seconds, args.no_ttl) {
        (Some(ttl), _) => TtlChange::Expire(ttl),
        (None, true) => TtlChange::Off,
        (None, false) => TtlChange::Keep,
    };
    request.overflow = match (&args.overflow_bucket, args.no_overflow) {
        (Some(target), _) => BucketChange::Set(target.clone()),
        (None, true) => BucketChange::Off,
        (None, false) => BucketChange::Keep,
    };
    request.parquet = match (&args.parquet, args.no_parquet) {
        (Some(target), _) => BucketChange::Set(target.clone()),
        (None, true) => BucketChange::Off,
        (None, false) => BucketChange::Keep,
    };
    request.parquet_cold = match (args.parquet_cold_after, args.no_parquet_cold) {
        (Some(days), _) => ColdChange::After(days),
        (None, true) => ColdChange::Off,
        (None, false) => ColdChange::Keep,
    };
    request.pitr = args.pitr;
    request.time_index = args.time_index;
    let billing_given = billing_from_args(&args)?;
    request.billing = billing_given.unwrap_or(Billing::OnDemand);

    if interactive {
        // A first, read-only plan tells which questions matter (no billing question for a
        // table that exists) and what the current TTL is.
        let draft = setup.plan(&request).await?;
        let mut prompter = Prompter::stdio();
        ask(&mut prompter, &args, &draft, &mut request)?;
    }

    let plan = setup.plan(&request).await?;
    if json {
        let report = match args.dry_run {
            true => None,
            false => Some(setup.apply(&plan).await?),
        };
        print_json(&setup_json(&plan, report.as_ref()))?;
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    if args.dry_run {
        write!(
            stdout,
            "{}",
            render_plan(&plan, "Dry run, nothing was changed. Setup would:")
        )?;
        stdout.flush()?;
        return Ok(());
    }
    if interactive && plan.has_changes() {
        let mut prompter = Prompter::stdio();
        prompter.tell(&render_plan(&plan, "Setup will:"))?;
        if !prompter.confirm("Apply these changes?")? {
            return Err(Failure::Runtime(
                "setup cancelled: nothing was changed".into(),
            ));
        }
    }
    let report = setup.apply(&plan).await?;
    if !global.quiet {
        write!(stdout, "{}", header(&report.config, &report.region))?;
        write!(stdout, "{}", render_steps(&report.steps, false))?;
        write!(stdout, "{}", render_notes(&report.notes))?;
        stdout.flush()?;
    }
    Ok(())
}

/// Billing from the flags; `None` when nothing about billing was given.
fn billing_from_args(args: &SetupArgs) -> Result<Option<Billing>, Failure> {
    let capacities_given = args.read_capacity.is_some() || args.write_capacity.is_some();
    match args.billing {
        Some(BillingArg::OnDemand) if capacities_given => Err(Failure::Usage(
            "--read-capacity and --write-capacity apply to provisioned billing: drop them, or \
             use --billing provisioned"
                .into(),
        )),
        Some(BillingArg::OnDemand) => Ok(Some(Billing::OnDemand)),
        Some(BillingArg::Provisioned) => Ok(Some(provisioned(args))),
        None if capacities_given => Ok(Some(provisioned(args))),
        None => Ok(None),
    }
}

fn provisioned(args: &SetupArgs) -> Billing {
    Billing::Provisioned {
        read_capacity: args.read_capacity.unwrap_or(DEFAULT_CAPACITY),
        write_capacity: args.write_capacity.unwrap_or(DEFAULT_CAPACITY),
    }
}

/// Asks for what the command line left open: the TTL, and the billing of a table that is
/// to be created.
fn ask<R: BufRead, W: Write>(
    prompter: &mut Prompter<R, W>,
    args: &SetupArgs,
    draft: &SetupPlan,
    request: &mut SetupRequest,
) -> Result<(), Failure> {
    let invalid = |problem: String| Failure::Usage(format!("no valid answer: {problem}"));
    if args.ttl_seconds.is_none() && !args.no_ttl && args.mode.has_table() {
        let current = match draft.config.ttl {
            Some(ttl) => format!("{} s", ttl.seconds()),
            None => "never".to_owned(),
        };
        let question = format!(
            "Expire archived records after how many seconds? A number, or 'never' \
             [Enter keeps the current setting: {current}]:"
        );
        if let Some(ttl) = prompter
            .ask_parsed(&question, parse_ttl_answer)?
            .map_err(invalid)?
        {
            request.ttl = ttl;
        }
    }
    let creates_table = draft.steps.iter().any(|s| {
        matches!(s.action, SetupAction::CreateTable { .. }) && s.status == StepStatus::ToDo
    });
    if !creates_table {
        return Ok(());
    }
    let provisioned = match args.billing {
        Some(billing) => billing == BillingArg::Provisioned,
        None if args.read_capacity.is_some() || args.write_capacity.is_some() => true,
        None => prompter
            .ask_parsed(
                "Billing of the new table, on-demand or provisioned? [on-demand]:",
                parse_billing_answer,
            )?
            .map_err(invalid)?
            .is_some_and(|b| b == BillingArg::Provisioned),
    };
    if provisioned {
        let mut capacity = |given: Option<u64>, what: &str| -> Result<u64, Failure> {
            match given {
                Some(units) => Ok(units),
                None => Ok(prompter
                    .ask_parsed(
                        &format!("{what} capacity units? [{DEFAULT_CAPACITY}]:"),
                        parse_capacity,
                    )?
                    .map_err(invalid)?
                    .unwrap_or(DEFAULT_CAPACITY)),
            }
        };
        request.billing = Billing::Provisioned {
            read_capacity: capacity(args.read_capacity, "Read")?,
            write_capacity: capacity(args.write_capacity, "Write")?,
        };
    }
    Ok(())
}

fn parse_ttl_answer(text: &str) -> Result<TtlChange, String> {
    let text = text.trim();
    if ["never", "none", "no", "off", "0"]
        .iter()
        .any(|word| text.eq_ignore_ascii_case(word))
    {
        return Ok(TtlChange::Off);
    }
    text.parse::<u64>()
        .ok()
        .and_then(|seconds| ArchiveTtl::from_seconds(seconds).ok())
        .map(TtlChange::Expire)
        .ok_or_else(|| {
            format!(
                "answer a whole number of seconds from 1 to {}, or 'never'",
                ArchiveTtl::MAX_SECONDS
            )
        })
}

fn parse_billing_answer(text: &str) -> Result<BillingArg, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on-demand" | "ondemand" | "on demand" | "o" => Ok(BillingArg::OnDemand),
        "provisioned" | "p" => Ok(BillingArg::Provisioned),
        _ => Err("answer on-demand or provisioned".into()),
    }
}

/// `Stream orders (us-east-1): every record archived in table orders-archive-ALL; ...`
fn header(config: &StreamArchiveConfig, region: &str) -> String {
    let what = config.mode.kept();
    let parquet = match &config.parquet {
        Some(target) => format!("; every record in Parquet files under {target}"),
        None => String::new(),
    };
    if !config.mode.has_table() {
        // The plan refuses NONE without a Parquet archive.
        let target = config
            .parquet
            .as_ref()
            .map_or_else(|| "(none)".to_owned(), ToString::to_string);
        return format!(
            "Stream {} ({region}): {} mode, no table: every record in Parquet files under \
             {target}.\n",
            config.stream, config.mode
        );
    }
    let ttl = match config.ttl {
        Some(ttl) => format!("items expire {} s after archiving", ttl.seconds()),
        None => "items never expire".to_owned(),
    };
    format!(
        "Stream {} ({region}): {} mode, {what} archived in table {}; {ttl}{parquet}.\n",
        config.stream, config.mode, config.table
    )
}

fn render_plan(plan: &SetupPlan, title: &str) -> String {
    format!(
        "{}{title}\n{}{}",
        header(&plan.config, &plan.region),
        render_steps(&plan.steps, true),
        render_notes(&plan.notes)
    )
}

/// One line per step: `  done       create table ...`, `  unchanged  table ... is ACTIVE`.
fn render_steps(steps: &[SetupStep], planned: bool) -> String {
    steps
        .iter()
        .map(|step| match &step.status {
            StepStatus::ToDo if planned => format!("  to do      {}\n", step.action),
            StepStatus::ToDo => format!("  not done   {}\n", step.action),
            StepStatus::Done => format!("  done       {}\n", step.action),
            StepStatus::Unchanged(why) => format!("  unchanged  {why}\n"),
        })
        .collect()
}

fn render_notes(notes: &[String]) -> String {
    notes.iter().map(|note| format!("note: {note}\n")).collect()
}

/// `setup -o json`: the plan, and what was done (`null` in a dry run).
fn setup_json(plan: &SetupPlan, report: Option<&SetupReport>) -> Value {
    let steps = |steps: &[SetupStep]| -> Vec<Value> {
        steps
            .iter()
            .map(|step| {
                let (status, detail) = match &step.status {
                    StepStatus::ToDo => ("to do", None),
                    StepStatus::Done => ("done", None),
                    StepStatus::Unchanged(why) => ("unchanged", Some(why.clone())),
                };
                json!({"action": step.action.to_string(), "status": status, "detail": detail})
            })
            .collect()
    };
    let config = &plan.config;
    json!({
        "stream": config.stream.as_str(),
        "streamArn": plan.stream_arn,
        "region": plan.region,
        "mode": config.mode.to_string(),
        "table": config.mode.has_table().then(|| config.table.as_str()),
        "ttlSeconds": config.ttl.map(|ttl| ttl.seconds()),
        "overflow": config.overflow.as_ref().map(ToString::to_string),
        "parquet": config.parquet.as_ref().map(ToString::to_string),
        "billing": plan.billing.to_string(),
        "dryRun": report.is_none(),
        "plan": steps(&plan.steps),
        "done": report.map(|r| steps(&r.steps)),
        "notes": report.map_or(&plan.notes, |r| &r.notes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinarch_core::ArchiveMode;
    use kinarch_core::{StreamName, TableName};

    fn args(extra: &[&str]) -> SetupArgs {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(
            ["kinarch", "setup", "orders", "ALL"]
                .into_iter()
                .chain(extra.iter().copied()),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Setup(args) => args,
            _ => unreachable!(),
        }
    }

    fn draft(creates_table: bool) -> SetupPlan {
        let table = TableName::new("orders-archive-ALL").unwrap();
        SetupPlan {
            stream_arn: "arn".into(),
            region: "us-east-1".into(),
            config: StreamArchiveConfig::new(
                StreamName::new("orders").unwrap(),
                ArchiveMode::All,
                None,
            ),
            billing: Billing::OnDemand,
            steps: vec![SetupStep {
                action: SetupAction::CreateTable {
                    table,
                    mode: ArchiveMode::All,
                    billing: Billing::OnDemand,
                    time_index: false,
                },
                status: if creates_table {
                    StepStatus::ToDo
                } else {
                    StepStatus::Unchanged("table orders-archive-ALL exists".into())
                },
            }],
            notes: vec![],
        }
    }

    fn answer(args: &SetupArgs, creates_table: bool, input: &str) -> (SetupRequest, String) {
        let mut request = SetupRequest::new(args.stream.name.clone(), args.mode);
        let mut prompter = Prompter::new(input.as_bytes(), Vec::new());
        ask(&mut prompter, args, &draft(creates_table), &mut request).unwrap();
        let shown = String::from_utf8(prompter.into_output()).unwrap();
        (request, shown)
    }

    #[test]
    fn asks_ttl_billing_and_capacities_for_a_new_table() {
        let (request, shown) = answer(&args(&[]), true, "3600\nprovisioned\n7\n\n");
        assert_eq!(
            request.ttl,
            TtlChange::Expire(ArchiveTtl::from_seconds(3600).unwrap())
        );
        assert_eq!(
            request.billing,
            Billing::Provisioned {
                read_capacity: 7,
                write_capacity: DEFAULT_CAPACITY
            }
        );
        assert!(shown.contains("current setting: never"), "{shown}");
    }

    #[test]
    fn asks_only_what_was_not_given_and_no_billing_for_an_existing_table() {
        let (request, shown) = answer(&args(&["--no-ttl"]), false, "");
        assert_eq!(request.ttl, TtlChange::Keep, "--no-ttl is applied by run()");
        assert!(shown.is_empty(), "nothing asked: {shown}");
        let (request, _) = answer(&args(&["--read-capacity", "3"]), true, "never\n9\n");
        assert_eq!(request.ttl, TtlChange::Off);
        assert_eq!(
            request.billing,
            Billing::Provisioned {
                read_capacity: 3,
                write_capacity: 9
            }
        );
    }

    #[test]
    fn empty_answers_keep_the_defaults() {
        let (request, _) = answer(&args(&[]), true, "\n\n");
        assert_eq!(request.ttl, TtlChange::Keep);
        assert_eq!(request.billing, Billing::OnDemand);
    }

    #[test]
    fn billing_flags() {
        assert_eq!(billing_from_args(&args(&[])).unwrap(), None);
        assert_eq!(
            billing_from_args(&args(&["--write-capacity", "2"])).unwrap(),
            Some(Billing::Provisioned {
                read_capacity: DEFAULT_CAPACITY,
                write_capacity: 2
            })
        );
        assert!(matches!(
            billing_from_args(&args(&["--billing", "on-demand", "--read-capacity", "2"])),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn steps_render_with_their_status() {
        let mut plan = draft(true);
        plan.notes.push("a note".into());
        let text = render_plan(&plan, "Setup will:");
        assert!(
            text.contains("Stream orders (us-east-1): ALL mode"),
            "{text}"
        );
        assert!(
            text.contains("  to do      create table orders-archive-ALL"),
            "{text}"
        );
        assert!(text.contains("note: a note"), "{text}");
        let text = render_steps(&draft(false).steps, false);
        assert!(
            text.contains("  unchanged  table orders-archive-ALL exists"),
            "{text}"
        );
    }
}
