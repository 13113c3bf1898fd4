"""The node and function allowlists, expressed over sqlglot expression types.

Everything in a parsed query is an expression node. The validator accepts a node only if its exact type is
listed here (structure, operators, literals) or it is an allowed function. A type sqlglot adds in a later
release is therefore refused until someone reviews it: the lists fail closed.

sqlglot maps many SQL functions to typed classes (``date_part`` becomes ``Extract``, ``strpos`` becomes
``StrPosition``) and everything it does not know to ``Anonymous`` with the name as written. So the function
allowlist has two halves: typed classes, and lowercase names for anonymous calls. Class names are looked
up by name, so a class missing from the installed sqlglot simply is not allowed.
"""

from __future__ import annotations

from sqlglot import exp


def _types(*names: str) -> frozenset[type[exp.Expression]]:
    found: set[type[exp.Expression]] = set()
    for name in names:
        cls = getattr(exp, name, None)
        if isinstance(cls, type) and issubclass(cls, exp.Expression):
            found.add(cls)
    return frozenset(found)


#: Query structure, operators and literals. Exact types only (no subclass matching).
STRUCTURE: frozenset[type[exp.Expression]] = _types(
    # query shape
    "Select",
    "Union",
    "Intersect",
    "Except",
    "Subquery",
    "With",
    "CTE",
    "TableAlias",
    "From",
    "Join",
    "Where",
    "Group",
    "Having",
    "Order",
    "Ordered",
    "Limit",
    "Offset",
    "Fetch",
    "LimitOptions",
    "Distinct",
    "Window",
    "WindowSpec",
    "Filter",
    "WithinGroup",
    "Lateral",
    "Values",
    "Table",
    "Rollup",
    "Cube",
    "GroupingSets",
    # names and literals
    "Identifier",
    "Column",
    "Alias",
    "Star",
    "Tuple",
    "Paren",
    "Literal",
    "Boolean",
    "Null",
    "Var",
    "Interval",
    "DataType",
    "DataTypeParam",
    "RawString",
    "Kwarg",
    # predicates and operators
    "In",
    "Between",
    "Is",
    "Not",
    "Neg",
    "Like",
    "ILike",
    "SimilarTo",
    "Escape",
    "EQ",
    "NEQ",
    "GT",
    "GTE",
    "LT",
    "LTE",
    "NullSafeEQ",
    "NullSafeNEQ",
    "And",
    "Or",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "IntDiv",
    "Mod",
    "DPipe",
    "Bracket",
    "Any",
    "AtTimeZone",
    "Exists",
    "Cast",
    "Case",
    "If",
)

#: Typed sqlglot function classes researchers need for cohort SQL.
FUNCTIONS: frozenset[type[exp.Expression]] = _types(
    # aggregates
    "Count",
    "Sum",
    "Avg",
    "Min",
    "Max",
    "Stddev",
    "StddevSamp",
    "StddevPop",
    "Variance",
    "VariancePop",
    "PercentileCont",
    "PercentileDisc",
    "Mode",
    "LogicalAnd",
    "LogicalOr",
    "GroupConcat",
    "ArrayAgg",
    # window functions
    "RowNumber",
    "Rank",
    "DenseRank",
    "PercentRank",
    "CumeDist",
    "Lag",
    "Lead",
    "FirstValue",
    "LastValue",
    "NthValue",
    "Ntile",
    # conditional
    "Coalesce",
    "Nullif",
    "Greatest",
    "Least",
    # maths
    "Abs",
    "Round",
    "Trunc",
    "Floor",
    "Ceil",
    "Ln",
    "Log",
    "Exp",
    "Pow",
    "Sqrt",
    "Cbrt",
    "Sign",
    "WidthBucket",
    # strings
    "Lower",
    "Upper",
    "Initcap",
    "Length",
    "Substring",
    "Trim",
    "Replace",
    "Translate",
    "Concat",
    "ConcatWs",
    "Left",
    "Right",
    "StrPosition",
    "SplitPart",
    "Pad",
    "Reverse",
    "Repeat",
    "StartsWith",
    "RegexpLike",
    "RegexpILike",
    "RegexpReplace",
    "ToNumber",
    # dates and times
    "Extract",
    "TimestampTrunc",
    "DateTrunc",
    "StrToDate",
    "TimeToStr",
    "StrToTime",
    "CurrentDate",
    "CurrentTimestamp",
    "MakeInterval",
    "TimestampFromParts",
    "JustifyDays",
    "JustifyHours",
    "JustifyInterval",
    "Date",
    # arrays and set-returning
    "Array",
    "ArraySize",
    "ArrayToString",
    "Explode",
    "Unnest",
    "ExplodingGenerateSeries",
    "GenerateSeries",
    "StringToArray",
    "ArrayPosition",
    "TimeFromParts",
)

#: Functions sqlglot parses as ``Anonymous`` that are allowed, by lowercase name. ``all`` is the
#: ``x = ALL(array)`` comparison, which sqlglot parses as a call.
ANONYMOUS_FUNCTIONS: frozenset[str] = frozenset(
    {
        "age",
        "make_date",
        "make_time",
        "octet_length",
        "isfinite",
        "every",
        "cardinality",
        "all",
        "num_nulls",
        "num_nonnulls",
        "regexp_match",
        "date_part",
        "to_date",
        "to_char",
        "to_timestamp",
        "string_to_array",
        "array_position",
        "justify_days",
        "justify_hours",
        "justify_interval",
    }
)

#: The set-returning functions that generate rows from literals and are bounded by the policy.
SERIES_FUNCTIONS: frozenset[type[exp.Expression]] = _types("ExplodingGenerateSeries", "GenerateSeries")

#: Cast target types. The ``reg*`` types resolve names in the system catalogs and user-defined types run
#: arbitrary input functions, so neither is here.
_T = exp.DataType.Type
CAST_TYPES: frozenset[object] = frozenset(
    getattr(_T, name)
    for name in (
        "ARRAY",
        "BIGINT",
        "INT",
        "SMALLINT",
        "DECIMAL",
        "DOUBLE",
        "FLOAT",
        "TEXT",
        "VARCHAR",
        "CHAR",
        "BPCHAR",
        "DATE",
        "TIMESTAMP",
        "TIMESTAMPTZ",
        "TIME",
        "TIMETZ",
        "INTERVAL",
        "BOOLEAN",
    )
    if hasattr(_T, name)
)

#: Node types that change data or the schema; anywhere in the tree they mean ``data_modifying``.
DATA_MODIFYING: frozenset[type[exp.Expression]] = _types(
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "TruncateTable",
    "Drop",
    "Create",
    "Alter",
    "Grant",
    "Revoke",
    "Comment",
    "Cache",
    "Uncache",
    "Refresh",
    "LoadData",
    "Attach",
    "Detach",
    "Export",
)

#: Statements that are not queries at all (sqlglot's ``Command`` is its unparsed passthrough).
UTILITY: frozenset[type[exp.Expression]] = _types(
    "Command",
    "Copy",
    "Set",
    "Use",
    "Transaction",
    "Commit",
    "Rollback",
    "Describe",
    "Show",
    "Analyze",
    "Pragma",
    "Kill",
    "Summarize",
    "Declare",
    "Execute",
    "Prepare",
    "Semicolon",
)
