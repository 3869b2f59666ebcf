//! The shape of the bound IR: what the planner relies on (resolved column positions,
//! explicit conversions, aggregates split from the expressions over them).

use crate::bound_rel;
use rampart_core::schema;
use rampart_kql::ast::{BinaryOp, JoinKind, Literal, ScalarType};
use rampart_kql::bind::{BoundExpr, BoundExprKind, JoinKey, ListItem, Rel, RelKind};

fn column_index(table: &str, column: &str) -> usize {
    match schema::table(table).and_then(|t| t.column(column)) {
        Some((index, _)) => index,
        None => panic!("{table}.{column}"),
    }
}

fn predicate(rel: &Rel) -> &BoundExpr {
    match &rel.kind {
        RelKind::Filter { predicate, .. } => predicate,
        other => panic!("expected a filter, got {other:?}"),
    }
}

fn input(rel: &Rel) -> &Rel {
    match &rel.kind {
        RelKind::Filter { input, .. }
        | RelKind::Project { input, .. }
        | RelKind::Aggregate { input, .. }
        | RelKind::Sort { input, .. }
        | RelKind::Limit { input, .. }
        | RelKind::Distinct { input }
        | RelKind::Serialize { input } => input,
        other => panic!("no single input: {other:?}"),
    }
}

#[test]
fn numeric_comparisons_widen_explicitly() {
    let rel = bound_rel("DeviceNetworkEvents | where RemotePort == 443");
    let p = predicate(&rel);
    assert_eq!(p.ty, ScalarType::Bool);
    let BoundExprKind::Binary {
        op: BinaryOp::Eq,
        left,
        right,
    } = &p.kind
    else {
        panic!("{p:?}")
    };
    assert_eq!(left.ty, ScalarType::Long);
    let BoundExprKind::Cast(inner) = &left.kind else {
        panic!("{left:?}")
    };
    assert_eq!(
        inner.kind,
        BoundExprKind::Column {
            index: column_index("DeviceNetworkEvents", "RemotePort"),
            name: "RemotePort".into()
        }
    );
    assert_eq!(inner.ty, ScalarType::Int);
    assert!(matches!(
        right.kind,
        BoundExprKind::Literal(Literal::Long(443))
    ));

    let rel = bound_rel("DeviceNetworkEvents | where RemotePort in (443, 8443)");
    let BoundExprKind::List { left, items, .. } = &predicate(&rel).kind else {
        panic!()
    };
    assert!(matches!(left.kind, BoundExprKind::Cast(_)));
    assert!(matches!(&items[0], ListItem::Scalar(e) if e.ty == ScalarType::Long));
}

#[test]
fn string_operators_get_string_operands() {
    let rel = bound_rel("DeviceNetworkEvents | where RemotePort has \"44\"");
    let BoundExprKind::Binary {
        op: BinaryOp::Has,
        left,
        ..
    } = &predicate(&rel).kind
    else {
        panic!()
    };
    assert!(
        matches!(&left.kind, BoundExprKind::Call { function: "tostring", args } if args.len() == 1),
        "{left:?}"
    );
}

#[test]
fn any_column_predicates_expand_over_the_schema() {
    let rel = bound_rel("DeviceInfo | where * has \"mimikatz\"");
    fn leaves(e: &BoundExpr, out: &mut Vec<usize>) {
        match &e.kind {
            BoundExprKind::Binary {
                op: BinaryOp::Or,
                left,
                right,
            } => {
                leaves(left, out);
                leaves(right, out);
            }
            BoundExprKind::Binary {
                op: BinaryOp::Has,
                left,
                ..
            } => {
                let column = match &left.kind {
                    BoundExprKind::Column { index, .. } => *index,
                    BoundExprKind::Call { args, .. } => match &args[0].kind {
                        BoundExprKind::Column { index, .. } => *index,
                        other => panic!("{other:?}"),
                    },
                    other => panic!("{other:?}"),
                };
                out.push(column);
            }
            other => panic!("{other:?}"),
        }
    }
    let mut columns = Vec::new();
    leaves(predicate(&rel), &mut columns);
    let width = schema::table("DeviceInfo").map_or(0, |t| t.columns.len());
    assert_eq!(columns, (0..width).collect::<Vec<_>>());
}

#[test]
fn summarize_splits_aggregates_from_expressions() {
    let rel = bound_rel(
        "DeviceLogonEvents | summarize Pct = 100.0 * countif(ActionType == \"LogonFailed\") / count() by DeviceName",
    );
    let RelKind::Project { input, exprs } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    let RelKind::Aggregate {
        keys, aggregates, ..
    } = &input.kind
    else {
        panic!("{:?}", input.kind)
    };
    assert_eq!(keys.len(), 1);
    let functions: Vec<&str> = aggregates.iter().map(|a| a.function).collect();
    assert_eq!(functions, ["countif", "count"]);
    assert_eq!(
        input.schema.pairs(),
        [
            ("DeviceName", ScalarType::String),
            ("$agg1", ScalarType::Long),
            ("$agg2", ScalarType::Long)
        ]
    );
    assert_eq!(
        exprs[0].kind,
        BoundExprKind::Column {
            index: 0,
            name: "DeviceName".into()
        }
    );
    let BoundExprKind::Binary {
        op: BinaryOp::Div,
        left,
        right,
    } = &exprs[1].kind
    else {
        panic!("{:?}", exprs[1])
    };
    assert_eq!(exprs[1].ty, ScalarType::Real);
    assert!(matches!(
        &left.kind,
        BoundExprKind::Binary {
            op: BinaryOp::Mul,
            ..
        }
    ));
    assert!(
        matches!(&right.kind, BoundExprKind::Cast(inner) if matches!(&inner.kind, BoundExprKind::Column { index: 2, .. }))
    );

    // Hidden names never collide with a key, and references follow them.
    let rel = bound_rel("DeviceInfo | summarize count() + 1 by ['$agg1'] = OSPlatform");
    let RelKind::Project { input, exprs } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    assert_eq!(
        input.schema.pairs(),
        [("$agg1", ScalarType::String), ("$agg11", ScalarType::Long)]
    );
    let BoundExprKind::Binary { left, .. } = &exprs[1].kind else {
        panic!("{:?}", exprs[1])
    };
    assert_eq!(
        left.kind,
        BoundExprKind::Column {
            index: 1,
            name: "$agg11".into()
        }
    );

    // Plain aggregates need no projection.
    let rel = bound_rel("DeviceLogonEvents | summarize count() by DeviceName");
    assert!(matches!(rel.kind, RelKind::Aggregate { .. }));
    assert!(!rel.serialized);
}

#[test]
fn arg_max_is_one_aggregate_with_several_outputs() {
    let rel =
        bound_rel("DeviceInfo | summarize arg_max(Timestamp, DeviceName, OSPlatform) by DeviceId");
    let RelKind::Aggregate { aggregates, .. } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    assert_eq!(aggregates.len(), 1);
    assert_eq!(aggregates[0].function, "arg_max");
    assert_eq!(
        aggregates[0].outputs,
        [ScalarType::Datetime, ScalarType::String, ScalarType::String]
    );
}

#[test]
fn extend_chains_projections_only_when_needed() {
    let rel = bound_rel("DeviceInfo | extend a = OSBuild + 1, b = DeviceName");
    assert!(matches!(input(&rel).kind, RelKind::Scan { .. }));
    let rel = bound_rel("DeviceInfo | extend a = OSBuild + 1, b = a * 2");
    let inner = input(&rel);
    assert!(matches!(inner.kind, RelKind::Project { .. }));
    assert!(matches!(input(inner).kind, RelKind::Scan { .. }));
    let RelKind::Project { exprs, .. } = &rel.kind else {
        panic!()
    };
    let width = schema::table("DeviceInfo").map_or(0, |t| t.columns.len());
    // `b` reads `a` from the first projection.
    let BoundExprKind::Binary { left, .. } = &exprs[width + 1].kind else {
        panic!("{:?}", exprs[width + 1])
    };
    assert_eq!(
        left.kind,
        BoundExprKind::Column {
            index: width,
            name: "a".into()
        }
    );
}

#[test]
fn join_keys_are_positions_in_each_side() {
    let rel = bound_rel(
        "DeviceProcessEvents | join (DeviceNetworkEvents) on DeviceId, $left.ProcessId == $right.InitiatingProcessId",
    );
    let RelKind::Join { kind, keys, .. } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    assert_eq!(*kind, JoinKind::InnerUnique);
    assert_eq!(
        *keys,
        [
            JoinKey {
                left: column_index("DeviceProcessEvents", "DeviceId"),
                right: column_index("DeviceNetworkEvents", "DeviceId"),
                ty: ScalarType::String
            },
            JoinKey {
                left: column_index("DeviceProcessEvents", "ProcessId"),
                right: column_index("DeviceNetworkEvents", "InitiatingProcessId"),
                ty: ScalarType::Long
            }
        ]
    );
}

#[test]
fn legacy_spellings_are_normalised() {
    let rel = bound_rel(r##"print replace(@"\d", "#", "a1"), iif(true, 1, 2), todynamic("[]")"##);
    let RelKind::Values { rows } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    let BoundExprKind::Call { function, args } = &rows[0][0].kind else {
        panic!()
    };
    assert_eq!(*function, "replace_regex");
    let texts: Vec<&str> = args
        .iter()
        .map(|a| match &a.kind {
            BoundExprKind::Literal(Literal::String(s)) => s.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["a1", r"\d", "#"]);
    assert!(matches!(
        rows[0][1].kind,
        BoundExprKind::Call {
            function: "iff",
            ..
        }
    ));
    assert!(matches!(
        rows[0][2].kind,
        BoundExprKind::Call {
            function: "parse_json",
            ..
        }
    ));

    let rel = bound_rel("DeviceInfo | summarize makeset(OSPlatform), make_set(OSPlatform)");
    let RelKind::Aggregate { aggregates, .. } = &rel.kind else {
        panic!()
    };
    assert_eq!(aggregates[0].function, "make_set");
    assert!(matches!(
        aggregates[0].args[1].kind,
        BoundExprKind::Literal(Literal::Long(128))
    ));
    assert_eq!(aggregates[1].args.len(), 1);
}

#[test]
fn column_ifexists_and_pack_all_resolve_against_the_schema() {
    let rel = bound_rel(
        "DeviceNetworkInfo | project DeviceName, MacAddress | extend a = column_ifexists(\"MacAddress\", \"\"), b = column_ifexists(\"Nope\", 0)",
    );
    let RelKind::Project { exprs, .. } = &rel.kind else {
        panic!()
    };
    assert_eq!(
        exprs[2].kind,
        BoundExprKind::Column {
            index: 1,
            name: "MacAddress".into()
        }
    );
    assert!(matches!(
        exprs[3].kind,
        BoundExprKind::Literal(Literal::Long(0))
    ));

    let rel =
        bound_rel("DeviceNetworkInfo | project DeviceName, MacAddress | project c = pack_all()");
    let RelKind::Project { exprs, .. } = &rel.kind else {
        panic!()
    };
    let BoundExprKind::Call { function, args } = &exprs[0].kind else {
        panic!()
    };
    assert_eq!(*function, "bag_pack");
    let shown: Vec<String> = args
        .iter()
        .map(|a| match &a.kind {
            BoundExprKind::Literal(Literal::String(s)) => format!("{s:?}"),
            BoundExprKind::Column { index, .. } => format!("#{index}"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(shown, ["\"DeviceName\"", "#0", "\"MacAddress\"", "#1"]);
}

#[test]
fn union_legs_fill_missing_columns() {
    let rel = bound_rel("union (datatable(x:long)[1]), (datatable(x:string, y:long)[\"s\", 2])");
    let RelKind::Union { inputs } = &rel.kind else {
        panic!()
    };
    let RelKind::Project { exprs, .. } = &inputs[0].kind else {
        panic!()
    };
    assert!(matches!(
        exprs[0].kind,
        BoundExprKind::Column { index: 0, .. }
    ));
    assert_eq!(
        exprs[1].kind,
        BoundExprKind::Literal(Literal::String(String::new()))
    );
    assert_eq!(
        exprs[2].kind,
        BoundExprKind::Literal(Literal::Null(ScalarType::Long))
    );
}

#[test]
fn serialization_follows_the_operators() {
    assert!(bound_rel("DeviceInfo | sort by Timestamp").serialized);
    assert!(bound_rel("DeviceInfo | top 5 by Timestamp | where OSBuild > 1").serialized);
    assert!(!bound_rel("DeviceInfo | where OSBuild > 1").serialized);
    assert!(bound_rel("range x from 1 to 3 step 1").serialized);
    assert!(!bound_rel("DeviceInfo | sort by Timestamp | summarize count()").serialized);
}

#[test]
fn lookup_is_a_join_and_a_projection() {
    let rel = bound_rel(
        "DeviceNetworkEvents | project RemoteIP | lookup (datatable(RemoteIP:string, Owner:string)[]) on RemoteIP",
    );
    let RelKind::Project { input, exprs } = &rel.kind else {
        panic!("{:?}", rel.kind)
    };
    assert!(matches!(
        input.kind,
        RelKind::Join {
            kind: JoinKind::LeftOuter,
            ..
        }
    ));
    assert_eq!(
        input
            .schema
            .pairs()
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        ["RemoteIP", "RemoteIP1", "Owner"]
    );
    let read: Vec<usize> = exprs
        .iter()
        .map(|e| match &e.kind {
            BoundExprKind::Column { index, .. } => *index,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(read, [0, 2]);
}
