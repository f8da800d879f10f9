//! The plan, branch by branch, without AWS.

use super::*;
use crate::aws::tables::Billing;
use crate::setup::StepStatus;

fn stream() -> StreamName {
    StreamName::new("orders").unwrap()
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn table(name: &str, mode: ArchiveMode, status: &str) -> TableInfo {
    TableInfo {
        name: TableName::new(name).unwrap(),
        status: status.into(),
        key_schema: KeySchema::for_mode(mode),
        billing: Billing::OnDemand,
        item_count: Some(0),
        size_bytes: None,
        arn: None,
        indexes: Vec::new(),
        incarnation: Default::default(),
    }
}

fn observed(
    tag_pairs: &[(&str, &str)],
    table: Option<TableInfo>,
    ttl: Option<TtlState>,
) -> Observed {
    Observed {
        stream_arn: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders".into(),
        tags: tags(tag_pairs),
        table_ttl: ttl,
        overflow_expiry: None,
        parquet_cold: None,
        pitr: None,
        orphan_checkpoints: None,
        // An existing table was tagged by an earlier setup (see the test of the tag).
        table_owner: match table.is_some() {
            true => TableOwner::Stream("orders".into()),
            false => TableOwner::Untagged,
        },
        table,
    }
}

fn request(mode: ArchiveMode, ttl: TtlChange) -> SetupRequest {
    SetupRequest {
        ttl,
        ..SetupRequest::new(stream(), mode)
    }
}

fn day() -> ArchiveTtl {
    ArchiveTtl::from_seconds(86_400).unwrap()
}

/// The step that tags the stream.
fn stream_tag_step(plan: &SetupPlan) -> &SetupStep {
    plan.steps
        .iter()
        .find(|s| matches!(s.action, SetupAction::TagStream { .. }))
        .expect("every plan tags the stream")
}

/// The action of the step that tags the stream.
fn stream_tag_action(plan: &SetupPlan) -> &SetupAction {
    &stream_tag_step(plan).action
}

/// (action kind, to do?) of each step, for compact assertions; the table's tag step,
/// which every plan has, is left out (its own test checks it).
fn shape(plan: &SetupPlan) -> Vec<(&'static str, bool)> {
    plan.steps
        .iter()
        .filter(|s| !matches!(s.action, SetupAction::TagTable { .. }))
        .map(|s| {
            let kind = match s.action {
                SetupAction::CreateTable { .. } => "create",
                SetupAction::WaitUntilActive { .. } => "wait",
                SetupAction::EnableTtl { .. } => "ttl",
                SetupAction::TagStream { .. } => "tag",
                SetupAction::MarkParquetStart { .. } => "mark-parquet",
                SetupAction::RemoveTag { tag: TAG_TTL, .. } => "untag-ttl",
                SetupAction::RemoveTag {
                    tag: TAG_OVERFLOW, ..
                } => "untag-overflow",
                SetupAction::RemoveTag {
                    tag: TAG_PARQUET, ..
                } => "untag-parquet",
                SetupAction::RemoveTag { .. } => "untag-other",
                SetupAction::CheckBucket {
                    role: BucketUse::Overflow,
                    ..
                } => "check-bucket",
                SetupAction::CheckBucket {
                    role: BucketUse::Parquet,
                    ..
                } => "check-parquet",
                SetupAction::SetOverflowExpiry { days: Some(_), .. } => "expire",
                SetupAction::SetOverflowExpiry { days: None, .. } => "unexpire",
                SetupAction::SetParquetCold { days: Some(_), .. } => "cold",
                SetupAction::SetParquetCold { days: None, .. } => "uncold",
                SetupAction::EnablePointInTimeRecovery { .. } => "pitr",
                SetupAction::CreateTimeIndex { .. } => "index",
                SetupAction::WaitUntilIndexActive { .. } => "wait-index",
                SetupAction::TagTable { .. } => "tag-table",
            };
            (kind, s.status == StepStatus::ToDo)
        })
        .collect()
}

#[test]
fn a_new_stream_gets_table_wait_ttl_and_tags_in_that_order() {
    let plan = plan(
        &request(ArchiveMode::All, TtlChange::Expire(day())),
        &observed(&[], None, None),
        "eu-west-1",
    )
    .unwrap();
    assert_eq!(
        shape(&plan),
        [
            ("create", true),
            ("wait", true),
            ("ttl", true),
            ("tag", true)
        ]
    );
    assert_eq!(plan.config.table.as_str(), "orders-archive-ALL");
    let SetupAction::TagStream { tags, .. } = stream_tag_action(&plan) else {
        panic!()
    };
    assert_eq!(
        tags,
        &[
            (TAG_MODE.to_owned(), "ALL".to_owned()),
            (TAG_TTL.to_owned(), "expireSeconds=86400".to_owned())
        ]
    );
    assert!(plan.has_changes());
    assert!(plan.notes.is_empty());
}

fn time_index(name: &str, status: &str, projects_all: bool) -> crate::aws::tables::IndexInfo {
    crate::aws::tables::IndexInfo {
        name: name.into(),
        status: status.into(),
        key_schema: KeySchema::time_index(),
        projects_all,
        backfilling: false,
    }
}

#[test]
fn pitr_and_the_time_index_come_after_the_table_and_before_the_tags() {
    let asked = SetupRequest {
        pitr: true,
        time_index: true,
        ..request(ArchiveMode::All, TtlChange::Keep)
    };
    // An existing table without the index: UpdateTable adds it, then setup waits.
    let existing = observed(
        &[],
        Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
        None,
    );
    let plan = plan(&asked, &existing, "r").unwrap();
    assert_eq!(
        shape(&plan),
        [
            ("create", false),
            ("wait", false),
            ("pitr", true),
            ("index", true),
            ("wait-index", true),
            ("tag", true),
            ("untag-ttl", false)
        ]
    );
}

/// Defect 4 of issue 23: a new table gets the time index in its CreateTable (an index
/// added later takes minutes even on an empty table); no UpdateTable, no backfill to wait.
#[test]
fn a_new_table_is_created_with_the_time_index() {
    let asked = SetupRequest {
        time_index: true,
        ..request(ArchiveMode::All, TtlChange::Keep)
    };
    let plan = plan(&asked, &observed(&[], None, None), "r").unwrap();
    assert_eq!(
        shape(&plan),
        [
            ("create", true),
            ("wait", true),
            ("tag", true),
            ("untag-ttl", false)
        ]
    );
    assert_eq!(
        plan.steps[0].action.to_string(),
        "create table orders-archive-ALL with key HASH partitionKey (S) + RANGE \
         sequenceNumber (S) (on-demand billing) and index kinarch-arrival-time with key HASH \
         shardId (S) + RANGE approximateArrivalTimestamp (N) (projection ALL)"
    );
}

#[test]
fn pitr_on_and_an_active_time_index_are_left_as_they_are() {
    let mut info = table("orders-archive-ALL", ArchiveMode::All, "ACTIVE");
    info.indexes = vec![time_index(crate::aws::tables::TIME_INDEX, "ACTIVE", true)];
    let mut done = observed(&[(TAG_MODE, "ALL")], Some(info.clone()), None);
    done.pitr = Some(true);
    let asked = SetupRequest {
        pitr: true,
        time_index: true,
        ..request(ArchiveMode::All, TtlChange::Keep)
    };
    let plan = plan_of(&asked, &done);
    assert!(!plan.has_changes(), "{:?}", plan.steps);

    // An index still being filled: only the wait is left.
    info.indexes[0].backfilling = true;
    let filling = Observed {
        table: Some(info),
        ..done.clone()
    };
    let plan = plan_of(&asked, &filling);
    let todo: Vec<_> = shape(&plan).into_iter().filter(|(_, todo)| *todo).collect();
    assert_eq!(todo, [("wait-index", true)]);

    // PITR off: switched on; not asked: not touched, and no index either.
    done.pitr = Some(false);
    let plan = plan_of(&asked, &done);
    assert!(shape(&plan).contains(&("pitr", true)));
    let plan = plan_of(&request(ArchiveMode::All, TtlChange::Keep), &done);
    assert!(
        !shape(&plan)
            .iter()
            .any(|(k, _)| *k == "pitr" || *k == "index")
    );
}

fn plan_of(request: &SetupRequest, observed: &Observed) -> SetupPlan {
    plan(request, observed, "r").unwrap()
}

#[test]
fn a_time_index_of_another_name_is_used_and_a_misfit_of_our_name_refused() {
    let asked = SetupRequest {
        time_index: true,
        ..request(ArchiveMode::All, TtlChange::Keep)
    };
    let mut info = table("orders-archive-ALL", ArchiveMode::All, "ACTIVE");
    info.indexes = vec![time_index("by-arrival", "ACTIVE", true)];
    let plan = plan_of(&asked, &observed(&[], Some(info.clone()), None));
    assert!(
        !shape(&plan)
            .iter()
            .any(|(k, todo)| k.contains("index") && *todo),
        "{:?}",
        plan.steps
    );

    // Keys only: not usable, so ours is added beside it.
    info.indexes = vec![time_index("by-arrival", "ACTIVE", false)];
    let plan = plan_of(&asked, &observed(&[], Some(info.clone()), None));
    assert!(shape(&plan).contains(&("index", true)));

    info.indexes = vec![time_index(crate::aws::tables::TIME_INDEX, "ACTIVE", false)];
    let err = super::plan(&asked, &observed(&[], Some(info), None), "r").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("projection not ALL") && text.contains("Delete"),
        "{text}"
    );
}

#[test]
fn a_stream_set_up_as_asked_has_nothing_to_do() {
    let done = observed(
        &[(TAG_MODE, "ALL"), (TAG_TTL, "expireSeconds=86400")],
        Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
        Some(TtlState::Enabled(attr::EXPIRE_AFTER.into())),
    );
    let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &done, "r").unwrap();
    assert!(!plan.has_changes(), "{:?}", plan.steps);
    assert_eq!(plan.config.ttl, Some(day()));
}

#[test]
fn a_table_that_is_not_active_yet_is_waited_for() {
    let creating = observed(
        &[],
        Some(table("orders-archive-ALL", ArchiveMode::All, "CREATING")),
        Some(TtlState::Disabled),
    );
    let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &creating, "r").unwrap();
    assert_eq!(
        shape(&plan),
        [
            ("create", false),
            ("wait", true),
            ("tag", true),
            ("untag-ttl", false)
        ]
    );
}

#[test]
fn a_mode_change_is_noted_with_the_table_that_keeps_the_old_records() {
    let latest = observed(&[(TAG_MODE, "LATEST")], None, None);
    let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &latest, "r").unwrap();
    assert_eq!(plan.config.table.as_str(), "orders-archive-ALL");
    assert!(
        plan.notes[0].contains("from LATEST to ALL")
            && plan.notes[0].contains("orders-archive-LATEST"),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_table_with_the_other_key_schema_is_refused_with_advice() {
    let misfit = observed(
        &[],
        Some(table("orders-archive-ALL", ArchiveMode::Latest, "ACTIVE")),
        Some(TtlState::Disabled),
    );
    let err = plan(
        &request(ArchiveMode::All, TtlChange::Keep),
        &misfit,
        "eu-west-1",
    )
    .unwrap_err();
    let Error::KeySchemaMismatch { advice, found, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        found.contains("HASH partitionKey") && !found.contains("RANGE"),
        "{found}"
    );
    assert!(
        advice.contains("kinarch setup orders LATEST eu-west-1"),
        "{advice}"
    );
}

#[test]
fn the_table_tag_names_the_table_and_is_kept() {
    let tagged = [(TAG_MODE, "ALL"), (TAG_TABLE, "legacy-archive")];
    assert_eq!(
        planned_table(
            &SetupRequest::new(stream(), ArchiveMode::All),
            &tags(&tagged)
        )
        .unwrap()
        .as_str(),
        "legacy-archive"
    );
    let plan = plan(
        &request(ArchiveMode::All, TtlChange::Keep),
        &observed(&tagged, None, None),
        "r",
    )
    .unwrap();
    assert_eq!(plan.config.table.as_str(), "legacy-archive");
    let bad = [(TAG_TABLE, "x")];
    assert!(planned_table(&SetupRequest::new(stream(), ArchiveMode::All), &tags(&bad)).is_err());
}

#[test]
fn ttl_on_another_attribute_or_being_disabled_conflicts() {
    for state in [
        TtlState::Enabled("ttl".into()),
        TtlState::Disabling(attr::EXPIRE_AFTER.into()),
    ] {
        let existing = observed(
            &[],
            Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
            Some(state.clone()),
        );
        let err = plan(
            &request(ArchiveMode::All, TtlChange::Expire(day())),
            &existing,
            "r",
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::TtlConflict { .. }),
            "{state:?}: {err:?}"
        );
    }
    // Without a TTL asked for, another attribute's TTL is no business of kinarch's.
    let other = observed(
        &[],
        Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
        Some(TtlState::Enabled("ttl".into())),
    );
    assert!(plan(&request(ArchiveMode::All, TtlChange::Keep), &other, "r").is_ok());
}

#[test]
fn ttl_off_removes_the_tag_and_notes_that_old_items_still_expire() {
    let with_ttl = observed(
        &[(TAG_MODE, "ALL"), (TAG_TTL, "expireSeconds=86400")],
        Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
        Some(TtlState::Enabled(attr::EXPIRE_AFTER.into())),
    );
    let plan = plan(&request(ArchiveMode::All, TtlChange::Off), &with_ttl, "r").unwrap();
    assert_eq!(
        shape(&plan),
        [
            ("create", false),
            ("wait", false),
            ("tag", false),
            ("untag-ttl", true)
        ]
    );
    assert!(
        plan.notes.iter().any(|n| n.contains("still expire")),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.config.ttl, None);
}

#[test]
fn tags_are_rewritten_only_when_a_value_differs() {
    let old_ttl = observed(
        &[(TAG_MODE, "ALL"), (TAG_TTL, "expireSeconds=60")],
        Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
        Some(TtlState::Enabled(attr::EXPIRE_AFTER.into())),
    );
    let plan = plan(
        &request(ArchiveMode::All, TtlChange::Expire(day())),
        &old_ttl,
        "r",
    )
    .unwrap();
    assert_eq!(
        shape(&plan),
        [
            ("create", false),
            ("wait", false),
            ("ttl", false),
            ("tag", true)
        ]
    );
}

#[test]
fn a_stream_of_the_original_archiver_keeps_its_lower_case_tag_and_table() {
    let original = [(TAG_MODE, "all")];
    assert_eq!(
        planned_table(
            &SetupRequest::new(stream(), ArchiveMode::All),
            &tags(&original)
        )
        .unwrap()
        .as_str(),
        "orders-archive-all"
    );
    let existing = observed(
        &original,
        Some(table("orders-archive-all", ArchiveMode::All, "ACTIVE")),
        Some(TtlState::Disabled),
    );
    let plan = plan(&request(ArchiveMode::All, TtlChange::Keep), &existing, "r").unwrap();
    assert_eq!(plan.config.table.as_str(), "orders-archive-all");
    assert!(!plan.has_changes(), "{:?}", plan.steps);
    // Another mode is another table, named as kinarch names them.
    let latest = plan_for_latest(&original);
    assert_eq!(latest.config.table.as_str(), "orders-archive-LATEST");
    assert!(
        latest.notes[0].contains("orders-archive-all"),
        "{:?}",
        latest.notes
    );
}

fn plan_for_latest(tag_pairs: &[(&str, &str)]) -> SetupPlan {
    plan(
        &request(ArchiveMode::Latest, TtlChange::Keep),
        &observed(tag_pairs, None, None),
        "r",
    )
    .unwrap()
}

#[test]
fn an_adopted_table_is_checked_and_named_by_a_tag() {
    let mut adopt = request(ArchiveMode::All, TtlChange::Keep);
    adopt.table = Some(TableName::new("kept-elsewhere").unwrap());
    let existing = observed(
        &[(TAG_MODE, "ALL")],
        Some(table("kept-elsewhere", ArchiveMode::All, "ACTIVE")),
        Some(TtlState::Disabled),
    );
    let plan = plan(&adopt, &existing, "r").unwrap();
    assert_eq!(plan.config.table.as_str(), "kept-elsewhere");
    let SetupAction::TagStream { tags, .. } = stream_tag_action(&plan) else {
        panic!("{:?}", plan.steps)
    };
    assert!(
        tags.contains(&(TAG_TABLE.to_owned(), "kept-elsewhere".to_owned())),
        "{tags:?}"
    );
    assert_eq!(stream_tag_step(&plan).status, StepStatus::ToDo);
    let misfit = observed(
        &[],
        Some(table("kept-elsewhere", ArchiveMode::Latest, "ACTIVE")),
        Some(TtlState::Disabled),
    );
    assert!(matches!(
        plan_err(&adopt, &misfit),
        Error::KeySchemaMismatch { .. }
    ));
}

fn plan_err(request: &SetupRequest, observed: &Observed) -> Error {
    plan(request, observed, "r").unwrap_err()
}

#[test]
fn an_invalid_ttl_tag_must_be_replaced_not_kept() {
    let broken = observed(&[(TAG_MODE, "ALL"), (TAG_TTL, "soon")], None, None);
    let err = plan(&request(ArchiveMode::All, TtlChange::Keep), &broken, "r").unwrap_err();
    assert!(err.to_string().contains("--ttl-seconds"), "{err}");
    assert!(plan(&request(ArchiveMode::All, TtlChange::Off), &broken, "r").is_ok());
}

#[test]
fn billing_of_an_existing_table_is_left_alone_with_a_note() {
    let existing = observed(
        &[],
        Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
        Some(TtlState::Disabled),
    );
    let mut provisioned = request(ArchiveMode::All, TtlChange::Keep);
    provisioned.billing = Billing::Provisioned {
        read_capacity: 5,
        write_capacity: 5,
    };
    let plan = plan(&provisioned, &existing, "r").unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("billing (on-demand) is left")),
        "{:?}",
        plan.notes
    );
    provisioned.billing = Billing::Provisioned {
        read_capacity: 0,
        write_capacity: 5,
    };
    assert!(matches!(
        check_request(&provisioned),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn an_overflow_bucket_is_checked_before_the_stream_is_tagged_with_it() {
    let target = OverflowTarget::parse("big-records/kinarch").unwrap();
    let mut req = request(ArchiveMode::All, TtlChange::Expire(day()));
    req.overflow = BucketChange::Set(target.clone());
    let plan = plan(&req, &observed(&[], None, None), "eu-west-1").unwrap();
    assert_eq!(
        shape(&plan),
        [
            ("create", true),
            ("wait", true),
            ("ttl", true),
            ("check-bucket", true),
            ("tag", true)
        ]
    );
    let SetupAction::TagStream { tags, .. } = stream_tag_action(&plan) else {
        panic!("tag step last")
    };
    assert!(tags.contains(&("ArchiveOverflow".into(), "s3://big-records/kinarch".into())));
    assert_eq!(plan.config.overflow, Some(target));
    // Lifecycle rules not read: a note names the rule that keeps payloads as long as
    // their items.
    let note = plan.notes.iter().find(|n| n.contains("lifecycle")).unwrap();
    assert!(
        note.contains("kinarch-orders")
            && note.contains("kinarch/orders/")
            && note.contains("1 day"),
        "{note}"
    );
}

#[test]
fn the_payloads_expire_with_their_items_never_sooner() {
    let target = OverflowTarget::parse("big-records/kinarch").unwrap();
    let mut req = request(ArchiveMode::All, TtlChange::Expire(day()));
    req.overflow = BucketChange::Set(target.clone());
    let with_rule = |days: Option<u64>| {
        let mut o = observed(&[], None, None);
        o.overflow_expiry = Some(Ok(days));
        o
    };
    let expiry = |plan: &SetupPlan| {
        plan.steps.iter().find_map(|s| match &s.action {
            SetupAction::SetOverflowExpiry { days, rule, .. } => {
                assert_eq!(rule.prefix, "kinarch/orders/");
                Some((*days, s.status == StepStatus::ToDo))
            }
            _ => None,
        })
    };
    let new = plan(&req, &with_rule(None), "eu-west-1").unwrap();
    assert_eq!(expiry(&new), Some((Some(1), true)));
    assert!(new.notes.iter().all(|n| !n.contains("lifecycle")));
    // A longer rule stays: payloads of items archived under a longer TTL need it.
    let longer = plan(&req, &with_rule(Some(7)), "eu-west-1").unwrap();
    assert_eq!(expiry(&longer), Some((Some(7), false)));
    // Without a TTL the rule goes.
    req.ttl = TtlChange::Off;
    let off = plan(&req, &with_rule(Some(1)), "eu-west-1").unwrap();
    assert_eq!(expiry(&off), Some((None, true)));
    let none = plan(&req, &with_rule(None), "eu-west-1").unwrap();
    assert_eq!(expiry(&none), None);
    // Rules that cannot be read: a note, no step.
    let mut o = observed(&[], None, None);
    o.overflow_expiry = Some(Err("AccessDenied".into()));
    req.ttl = TtlChange::Expire(day());
    let unread = plan(&req, &o, "eu-west-1").unwrap();
    assert_eq!(expiry(&unread), None);
    assert!(
        unread.notes.iter().any(|n| n.contains("AccessDenied")),
        "{:?}",
        unread.notes
    );
}

#[test]
fn the_parquet_files_move_to_cold_storage_as_asked_and_a_change_is_said() {
    let target = OverflowTarget::parse("s3://history/kinarch").unwrap();
    let tagged = [
        ("StreamArchiveMode", "ALL"),
        ("ArchiveParquet", "s3://history/kinarch"),
    ];
    let mut req = request(ArchiveMode::All, TtlChange::Keep);
    let with_rule = |days: Option<u64>| {
        let mut o = observed(&tagged, None, None);
        o.parquet_cold = Some(Ok(days));
        o
    };
    let cold = |plan: &SetupPlan| {
        plan.steps.iter().find_map(|s| match &s.action {
            SetupAction::SetParquetCold {
                days,
                rule,
                target: t,
            } => {
                assert_eq!(
                    (rule.id.as_str(), rule.prefix.as_str()),
                    ("kinarch-parquet-orders", "kinarch/orders/")
                );
                assert_eq!(t, &target);
                Some((*days, s.status == StepStatus::ToDo))
            }
            _ => None,
        })
    };
    req.parquet_cold = ColdChange::After(90);
    let new = plan(&req, &with_rule(None), "eu-west-1").unwrap();
    assert_eq!(cold(&new), Some((Some(90), true)));
    let same = plan(&req, &with_rule(Some(90)), "eu-west-1").unwrap();
    assert_eq!(cold(&same), Some((Some(90), false)));
    // Another number of days is applied, and said.
    let shorter = plan(&req, &with_rule(Some(180)), "eu-west-1").unwrap();
    assert_eq!(cold(&shorter), Some((Some(90), true)));
    assert!(
        shorter
            .notes
            .iter()
            .any(|n| n.contains("after 90 day(s) instead of 180")),
        "{:?}",
        shorter.notes
    );
    req.parquet_cold = ColdChange::Off;
    assert_eq!(
        cold(&plan(&req, &with_rule(Some(90)), "eu-west-1").unwrap()),
        Some((None, true))
    );
    assert_eq!(
        cold(&plan(&req, &with_rule(None), "eu-west-1").unwrap()),
        None
    );
    // Kept: nothing read, nothing done.
    req.parquet_cold = ColdChange::Keep;
    assert_eq!(
        cold(&plan(&req, &observed(&tagged, None, None), "eu-west-1").unwrap()),
        None
    );
    // Without a Parquet archive there is nothing to move.
    let mut bare = request(ArchiveMode::All, TtlChange::Keep);
    bare.parquet_cold = ColdChange::After(30);
    let refused = plan(&bare, &observed(&[], None, None), "eu-west-1").unwrap_err();
    assert!(refused.to_string().contains("--parquet"), "{refused}");
}

#[test]
fn overflow_is_kept_or_removed_as_asked() {
    let tagged = [
        ("StreamArchiveMode", "ALL"),
        ("ArchiveOverflow", "s3://big-records"),
    ];
    let table = Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE"));
    let kept = plan(
        &request(ArchiveMode::All, TtlChange::Keep),
        &observed(&tagged, table.clone(), Some(TtlState::Disabled)),
        "eu-west-1",
    )
    .unwrap();
    assert!(!kept.has_changes(), "{:?}", kept.steps);
    assert_eq!(
        kept.config.overflow.unwrap().tag_value(),
        "s3://big-records"
    );
    assert!(
        kept.notes.iter().all(|n| !n.contains("lifecycle")),
        "no TTL, no note"
    );

    let mut off = request(ArchiveMode::All, TtlChange::Keep);
    off.overflow = BucketChange::Off;
    let removed = plan(&off, &observed(&tagged, table.clone(), None), "eu-west-1").unwrap();
    assert_eq!(shape(&removed).last(), Some(&("untag-overflow", true)));
    assert_eq!(removed.config.overflow, None);
    let untagged = [("StreamArchiveMode", "ALL")];
    let nothing = plan(&off, &observed(&untagged, table.clone(), None), "eu-west-1").unwrap();
    assert!(!nothing.has_changes(), "{:?}", nothing.steps);

    let broken = [("StreamArchiveMode", "ALL"), ("ArchiveOverflow", "ftp://x")];
    let err = plan(
        &request(ArchiveMode::All, TtlChange::Keep),
        &observed(&broken, table, None),
        "eu-west-1",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ArchiveOverflow") && err.contains("--no-overflow"),
        "{err}"
    );
}

#[test]
fn the_table_is_tagged_with_its_stream_and_another_streams_table_is_refused() {
    let tag_step = |plan: &SetupPlan| {
        plan.steps
            .iter()
            .find(|s| matches!(s.action, SetupAction::TagTable { .. }))
            .cloned()
            .unwrap()
    };
    let asked = request(ArchiveMode::All, TtlChange::Keep);
    // A new table is tagged after it is ACTIVE, before the stream's tags.
    let new_table = plan_of(&asked, &observed(&[], None, None));
    let kinds: Vec<String> = new_table
        .steps
        .iter()
        .map(|s| s.action.to_string())
        .collect();
    let at = |text: &str| kinds.iter().position(|k| k.starts_with(text)).unwrap();
    assert!(at("wait until table") < at("tag table") && at("tag table") < at("tag stream"));
    assert_eq!(
        tag_step(&new_table).action.to_string(),
        "tag table orders-archive-ALL: ArchivedStream=orders"
    );
    assert_eq!(tag_step(&new_table).status, StepStatus::ToDo);
    // An existing table of the original archiver, untagged: tagged now.
    let mut old = observed(
        &[],
        Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE")),
        None,
    );
    old.table_owner = TableOwner::Untagged;
    assert_eq!(tag_step(&plan_of(&asked, &old)).status, StepStatus::ToDo);
    // Tagged for this stream: nothing to do.
    old.table_owner = TableOwner::Stream("orders".into());
    assert!(matches!(
        tag_step(&plan_of(&asked, &old)).status,
        StepStatus::Unchanged(_)
    ));
    // Another stream's archive: refused, naming both.
    old.table_owner = TableOwner::Stream("prices".into());
    let err = plan(&asked, &old, "eu-west-1").unwrap_err().to_string();
    assert!(
        err.contains("archive of stream prices") && err.contains("archiving orders into it"),
        "{err}"
    );
}

#[test]
fn a_parquet_archive_beside_a_table_is_checked_and_tagged_and_removed_on_request() {
    let target = ParquetTarget::parse("s3://history/kinarch").unwrap();
    let mut req = request(ArchiveMode::All, TtlChange::Keep);
    req.parquet = BucketChange::Set(target.clone());
    let new = plan(&req, &observed(&[], None, None), "eu-west-1").unwrap();
    assert_eq!(
        shape(&new),
        [
            ("create", true),
            ("wait", true),
            ("check-parquet", true),
            ("mark-parquet", true),
            ("tag", true),
            ("untag-ttl", false)
        ]
    );
    let SetupAction::TagStream { tags, .. } = stream_tag_action(&new) else {
        panic!("tag step")
    };
    assert!(tags.contains(&(TAG_PARQUET.into(), "s3://history/kinarch".into())));
    assert_eq!(new.config.parquet, Some(target));

    // Rerun without the option: kept. With --no-parquet: the tag goes.
    let tagged = [
        ("StreamArchiveMode", "ALL"),
        (TAG_PARQUET, "s3://history/kinarch"),
    ];
    let existing = Some(table("orders-archive-ALL", ArchiveMode::All, "ACTIVE"));
    let kept = plan(
        &request(ArchiveMode::All, TtlChange::Keep),
        &observed(&tagged, existing.clone(), None),
        "eu-west-1",
    )
    .unwrap();
    assert!(!kept.has_changes(), "{:?}", shape(&kept));
    let mut off = request(ArchiveMode::All, TtlChange::Keep);
    off.parquet = BucketChange::Off;
    let removed = plan(&off, &observed(&tagged, existing, None), "eu-west-1").unwrap();
    assert!(shape(&removed).contains(&("untag-parquet", true)));
    assert_eq!(removed.config.parquet, None);
}

#[test]
fn mode_none_keeps_no_table_and_needs_the_parquet_archive() {
    let target = ParquetTarget::parse("s3://history").unwrap();
    let mut req = request(ArchiveMode::None, TtlChange::Keep);
    let err = plan(&req, &observed(&[], None, None), "eu-west-1").unwrap_err();
    assert!(err.to_string().contains("--parquet s3://BUCKET"), "{err}");

    req.parquet = BucketChange::Set(target.clone());
    let plan_none = plan(&req, &observed(&[], None, None), "eu-west-1").unwrap();
    assert!(
        plan_none.steps.iter().all(|s| !matches!(
            s.action,
            SetupAction::CreateTable { .. } | SetupAction::TagTable { .. }
        )),
        "{:?}",
        plan_none.steps
    );
    assert_eq!(
        shape(&plan_none),
        [
            ("check-parquet", true),
            ("mark-parquet", true),
            ("tag", true),
            ("untag-ttl", false)
        ]
    );

    // An ALL stream with a TTL and an overflow bucket moving to NONE: those tags go.
    let tagged = [
        ("StreamArchiveMode", "ALL"),
        ("ArchiveTTL", "expireSeconds=86400"),
        ("ArchiveOverflow", "s3://big/kinarch"),
        (TAG_PARQUET, "s3://history"),
    ];
    let moved = plan(
        &request(ArchiveMode::None, TtlChange::Keep),
        &observed(&tagged, None, None),
        "eu-west-1",
    )
    .unwrap();
    let kinds = shape(&moved);
    assert!(kinds.contains(&("untag-ttl", true)), "{kinds:?}");
    assert!(kinds.contains(&("untag-overflow", true)), "{kinds:?}");
    assert!(
        moved.notes.iter().any(|n| n.contains("orders-archive-ALL")),
        "{:?}",
        moved.notes
    );

    // Options of a table are refused, not ignored.
    for refused in [
        SetupRequest {
            ttl: TtlChange::Expire(day()),
            ..req.clone()
        },
        SetupRequest {
            time_index: true,
            ..req.clone()
        },
        SetupRequest {
            pitr: true,
            ..req.clone()
        },
    ] {
        let err = plan(&refused, &observed(&[], None, None), "eu-west-1").unwrap_err();
        assert!(err.to_string().contains("mode NONE has none"), "{err}");
    }
}
