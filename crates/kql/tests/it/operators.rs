use crate::{pipeline, sexpr, single_op};
use rampart_kql::ast::*;

fn names(items: &[NamedExpr]) -> Vec<String> {
    items
        .iter()
        .map(|item| match &item.name {
            Some(AssignTarget::Single(name)) => format!("{}={}", name.text, sexpr(&item.expr)),
            Some(AssignTarget::Tuple(names)) => format!(
                "({})={}",
                names
                    .iter()
                    .map(|n| n.text.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                sexpr(&item.expr)
            ),
            None => sexpr(&item.expr),
        })
        .collect()
}

fn patterns(items: &[NamePattern]) -> Vec<&str> {
    items.iter().map(|p| p.text.as_str()).collect()
}

#[test]
fn where_and_filter() {
    assert!(matches!(single_op("where a > 1"), Operator::Where(_)));
    assert!(matches!(single_op("filter a > 1"), Operator::Where(_)));
}

#[test]
fn project_and_extend() {
    let Operator::Project(items) = single_op("project a, b = c + 1, ['x y'] = d.e") else {
        panic!()
    };
    assert_eq!(names(&items), ["a", "b=(Add c 1)", "x y=d.e"]);
    let Operator::Extend(items) = single_op("extend (A, B) = f(x), n = 1") else {
        panic!()
    };
    assert_eq!(names(&items), ["(A,B)=f(x)", "n=1"]);
}

#[test]
fn project_away_keep_with_wildcards() {
    let Operator::ProjectAway(items) = single_op("project-away Pre*, *Suf, A*B*, Plain") else {
        panic!()
    };
    assert_eq!(patterns(&items), ["Pre*", "*Suf", "A*B*", "Plain"]);
    assert!(items[0].is_wildcard() && !items[3].is_wildcard());
    let Operator::ProjectKeep(items) = single_op("project-keep *") else {
        panic!()
    };
    assert_eq!(patterns(&items), ["*"]);
}

#[test]
fn project_rename_and_reorder() {
    let Operator::ProjectRename(items) = single_op("project-rename New = Old, ['a b'] = c") else {
        panic!()
    };
    assert_eq!(
        (items[0].new.text.as_str(), items[0].old.text.as_str()),
        ("New", "Old")
    );
    assert_eq!(items[1].new.text, "a b");
    let Operator::ProjectReorder(items) = single_op("project-reorder B, A* asc, C granny-desc")
    else {
        panic!()
    };
    assert_eq!(items[0].order, None);
    assert_eq!(items[1].order, Some(ReorderOrder::Asc));
    assert_eq!(items[2].order, Some(ReorderOrder::GrannyDesc));
}

#[test]
fn summarize_with_aggregates_and_bin() {
    let Operator::Summarize(s) = single_op(
        "summarize Total = count(), dcount(User), arg_max(T, *) by Host, bin(Timestamp, 1h)",
    ) else {
        panic!()
    };
    assert_eq!(
        names(&s.aggregates),
        ["Total=count()", "dcount(User)", "arg_max(T, *)"]
    );
    assert_eq!(
        names(&s.by),
        ["Host", "bin(Timestamp, Timespan(36000000000))"]
    );
    let Operator::Summarize(s) = single_op("summarize by A, B") else {
        panic!()
    };
    assert!(s.aggregates.is_empty());
    assert_eq!(s.by.len(), 2);
    let Operator::Summarize(s) =
        single_op("summarize hint.shufflekey = A Pct = 100.0 * countif(F) / count()")
    else {
        panic!()
    };
    assert_eq!(s.aggregates.len(), 1);
}

#[test]
fn count_distinct_take_limit_sample() {
    assert_eq!(single_op("count"), Operator::Count);
    assert_eq!(
        single_op("distinct *"),
        Operator::Distinct(DistinctColumns::All)
    );
    assert!(
        matches!(single_op("distinct A, B"), Operator::Distinct(DistinctColumns::Columns(c)) if c.len() == 2)
    );
    assert!(matches!(single_op("take 10"), Operator::Take(_)));
    assert!(matches!(single_op("limit 10"), Operator::Take(_)));
    assert!(matches!(single_op("sample 5"), Operator::Sample(_)));
}

#[test]
fn sort_defaults_to_descending_with_nulls_last() {
    let Operator::Sort(keys) = single_op("sort by a, b asc, c desc nulls first, d asc nulls last")
    else {
        panic!()
    };
    let summary: Vec<_> = keys.iter().map(|k| (k.direction, k.nulls)).collect();
    use NullsPlacement::*;
    use SortDirection::*;
    assert_eq!(
        summary,
        [(Desc, Last), (Asc, First), (Desc, First), (Asc, Last)]
    );
    assert!(matches!(single_op("order by a"), Operator::Sort(k) if k.len() == 1));
}

#[test]
fn top() {
    let Operator::Top(top) = single_op("top 5 by Count asc nulls last") else {
        panic!()
    };
    assert_eq!(sexpr(&top.count), "5");
    assert_eq!(
        (top.by.direction, top.by.nulls),
        (SortDirection::Asc, NullsPlacement::Last)
    );
    let Operator::Top(top) = single_op("top 5 by x") else {
        panic!()
    };
    assert_eq!(top.by.direction, SortDirection::Desc);
}

#[test]
fn join_kinds_and_conditions() {
    let Operator::Join(join) = single_op("join R on Key") else {
        panic!()
    };
    assert_eq!(join.kind, JoinKind::InnerUnique);
    assert_eq!(
        join.on,
        [JoinCondition::Column(Name {
            text: "Key".into(),
            span: join_key_span(&join)
        })]
    );
    for (kind, expected) in [
        ("innerunique", JoinKind::InnerUnique),
        ("inner", JoinKind::Inner),
        ("leftouter", JoinKind::LeftOuter),
        ("rightouter", JoinKind::RightOuter),
        ("fullouter", JoinKind::FullOuter),
        ("leftsemi", JoinKind::LeftSemi),
        ("leftanti", JoinKind::LeftAnti),
        ("anti", JoinKind::LeftAnti),
        ("leftantisemi", JoinKind::LeftAnti),
        ("rightsemi", JoinKind::RightSemi),
        ("rightanti", JoinKind::RightAnti),
        ("rightantisemi", JoinKind::RightAnti),
    ] {
        let Operator::Join(join) = single_op(&format!(
            "join kind={kind} hint.strategy=broadcast (R | where x > 1) on $left.A == $right.B, C and $right.D == $left.E"
        )) else {
            panic!()
        };
        assert_eq!(join.kind, expected, "{kind}");
        assert_eq!(join.right.operators.len(), 1);
        let on: Vec<String> = join
            .on
            .iter()
            .map(|c| match c {
                JoinCondition::Column(n) => n.text.clone(),
                JoinCondition::LeftRight { left, right } => format!("{}={}", left.text, right.text),
            })
            .collect();
        assert_eq!(on, ["A=B", "C", "E=D"]);
    }
}

fn join_key_span(join: &Join) -> rampart_kql::span::Span {
    match &join.on[0] {
        JoinCondition::Column(name) => name.span,
        JoinCondition::LeftRight { left, .. } => left.span,
    }
}

#[test]
fn lookup() {
    let Operator::Lookup(lookup) = single_op("lookup D on Ip") else {
        panic!()
    };
    assert_eq!(lookup.kind, LookupKind::LeftOuter);
    let Operator::Lookup(lookup) =
        single_op("lookup kind=inner (D | project Ip) on $left.Ip == $right.Addr")
    else {
        panic!()
    };
    assert_eq!(lookup.kind, LookupKind::Inner);
}

#[test]
fn union_operator_and_source() {
    let Operator::Union(union) =
        single_op("union kind=inner withsource=Src isfuzzy=true A, (B | take 1), C*")
    else {
        panic!()
    };
    assert_eq!(union.kind, UnionKind::Inner);
    assert_eq!(
        union.with_source.as_ref().map(|n| n.text.as_str()),
        Some("Src")
    );
    assert!(union.is_fuzzy);
    assert!(matches!(&union.legs[1], UnionLeg::Subquery(_)));
    assert!(matches!(&union.legs[2], UnionLeg::Table(p) if p.text == "C*"));
    let source = pipeline("union Device* | where x == 1").source;
    assert!(matches!(source, Source::Union(u) if u.legs.len() == 1));
}

#[test]
fn mv_expand_and_legacy_mvexpand() {
    let Operator::MvExpand(mv) =
        single_op("mv-expand kind=array with_itemindex=i a to typeof(string), n = b limit 10")
    else {
        panic!()
    };
    assert!(!mv.legacy);
    assert_eq!(mv.bag_expansion, BagExpansion::Array);
    assert_eq!(mv.item_index.as_ref().map(|n| n.text.as_str()), Some("i"));
    assert_eq!(mv.items[0].to_type, Some(ScalarType::String));
    assert_eq!(
        mv.items[1].name.as_ref().map(|n| n.text.as_str()),
        Some("n")
    );
    assert!(mv.limit.is_some());
    let Operator::MvExpand(mv) = single_op("mvexpand a") else {
        panic!()
    };
    assert!(mv.legacy);
    assert_eq!(mv.bag_expansion, BagExpansion::Bag);
}

#[test]
fn mv_apply() {
    let Operator::MvApply(apply) = single_op(
        "mv-apply with_itemindex=i e = arr to typeof(long) on (where e > 1 | summarize s = sum(e))",
    ) else {
        panic!()
    };
    assert_eq!(apply.items.len(), 1);
    assert_eq!(apply.subquery.len(), 2);
    assert!(matches!(
        single_op("mvapply x on (take 1)"),
        Operator::MvApply(_)
    ));
}

#[test]
fn parse_kinds_and_patterns() {
    let Operator::Parse(parse) =
        single_op(r#"parse Msg with * "user=" User " port=" Port:long " " *"#)
    else {
        panic!()
    };
    assert_eq!(parse.kind, ParseKind::Simple);
    assert_eq!(parse.pattern.len(), 7);
    assert_eq!(parse.pattern[0], ParsePart::Wildcard);
    assert!(
        matches!(&parse.pattern[4], ParsePart::Column { name, ty: Some(ScalarType::Long) } if name.text == "Port")
    );
    let Operator::Parse(parse) = single_op(r#"parse kind=regex flags=Ui Msg with @"(\d+)" N:int"#)
    else {
        panic!()
    };
    assert_eq!(
        parse.kind,
        ParseKind::Regex {
            flags: Some("Ui".into())
        }
    );
    let Operator::Parse(parse) = single_op(r#"parse kind=relaxed Msg with "a" X"#) else {
        panic!()
    };
    assert_eq!(parse.kind, ParseKind::Relaxed);
    assert!(matches!(
        single_op(r#"parse-where Msg with "a=" A"#),
        Operator::ParseWhere(_)
    ));
}

#[test]
fn make_series() {
    let Operator::MakeSeries(series) = single_op(
        "make-series n = count() default = 0, avg(x) on Timestamp from ago(7d) to now() step 1h by Host",
    ) else {
        panic!()
    };
    assert_eq!(series.aggregates.len(), 2);
    assert!(series.aggregates[0].default.is_some());
    assert!(series.range.from.is_some() && series.range.to.is_some());
    assert_eq!(series.by.len(), 1);
    let Operator::MakeSeries(series) =
        single_op("make-series count() on T in range(ago(1d), now(), 1h)")
    else {
        panic!()
    };
    assert!(series.range.from.is_some());
}

#[test]
fn evaluate() {
    let Operator::Evaluate(eval) = single_op("evaluate bag_unpack(d, 'p_') : (a:string, b:long)")
    else {
        panic!()
    };
    assert_eq!(eval.plugin.name.text, "bag_unpack");
    assert_eq!(eval.plugin.args.len(), 2);
    assert_eq!(eval.schema.as_ref().map(Vec::len), Some(2));
    assert!(
        matches!(single_op("evaluate pivot(Col, sum(x))"), Operator::Evaluate(e) if e.schema.is_none())
    );
}

#[test]
fn serialize_as_invoke_getschema_render() {
    assert_eq!(single_op("serialize"), Operator::Serialize(vec![]));
    assert!(
        matches!(single_op("serialize rn = row_number()"), Operator::Serialize(v) if v.len() == 1)
    );
    assert!(
        matches!(single_op("as hint.materialized=true Saved"), Operator::As(n) if n.text == "Saved")
    );
    assert!(matches!(single_op("invoke F(1, 'x')"), Operator::Invoke(c) if c.args.len() == 2));
    assert_eq!(single_op("getschema"), Operator::GetSchema);
    assert!(
        matches!(single_op("render timechart with (title='x', ymin=0)"), Operator::Render(n) if n.text == "timechart")
    );
    assert_eq!(pipeline("T | render barchart | take 1").operators.len(), 2);
}

#[test]
fn top_nested() {
    let Operator::TopNested(levels) = single_op(
        "top-nested 3 of Host with others = 'other' by n = count() desc, top-nested of User by sum(Bytes) asc",
    ) else {
        panic!()
    };
    assert_eq!(levels.len(), 2);
    assert!(levels[0].others.is_some());
    assert!(levels[1].count.is_none());
    assert_eq!(levels[1].direction, SortDirection::Asc);
}

#[test]
fn search_operator_and_source() {
    let Operator::Search(search) =
        single_op(r#"search kind=case_sensitive Cmd:"whoami" and "abc*""#)
    else {
        panic!()
    };
    assert!(search.case_sensitive);
    assert_eq!(
        sexpr(&search.predicate),
        r#"(And (SearchColumn Cmd "whoami") "abc*")"#
    );
    let source = pipeline(r#"search in (Dev*, Email) "x" | take 1"#).source;
    assert!(matches!(source, Source::Search(s) if s.tables.len() == 2));
}

#[test]
fn other_sources() {
    assert!(matches!(
        pipeline(r#"datatable (A:long, B:string) [1, "x", -2, "y",]"#).source,
        Source::Datatable(d) if d.columns.len() == 2 && d.values.len() == 4
    ));
    assert!(matches!(pipeline("print 1, x = 2").source, Source::Print(p) if p.len() == 2));
    assert!(matches!(
        pipeline("range x from 1 to 10 step 2 | take 1").source,
        Source::Range(r) if r.column.text == "x"
    ));
    assert!(matches!(
        pipeline("(T | take 1) | count").source,
        Source::Paren(_)
    ));
    assert!(matches!(pipeline("F(1) | count").source, Source::Call(c) if c.name.text == "F"));
    assert!(
        matches!(pipeline("['My Table'] | count").source, Source::Table(n) if n.text == "My Table")
    );
}

#[test]
fn long_pipeline() {
    let tabular = pipeline(
        "DeviceProcessEvents
         | where Timestamp > ago(7d)
         | where FileName in~ ('powershell.exe', 'pwsh.exe') and ProcessCommandLine has_any ('-enc', '-EncodedCommand')
         | extend Decoded = base64_decode_tostring(extract(@'-enc\\s+(\\S+)', 1, ProcessCommandLine))
         | summarize Count = count(), Hosts = make_set(DeviceName) by AccountName
         | top 10 by Count",
    );
    assert_eq!(tabular.operators.len(), 5);
}
