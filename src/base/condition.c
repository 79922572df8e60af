/*
 * condition.c — validation and evaluation of policy conditions.
 *
 * A condition must be a jsonpath predicate (a comparison, exists, starts
 * with, like_regex, or a boolean combination of them) and may use only the
 * variable $now.  Both are checked when the policy is written, because at
 * run time the engine raises an error for an unknown variable even in its
 * silent mode.  Evaluation runs in silent mode: structural, type and numeric
 * errors yield unknown, which the evaluator treats as fail-closed.  Errors
 * that must reach the caller (query cancel, stack depth, out of memory) are
 * not suppressed.
 */
#include "condition.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

typedef struct ConditionScan
{
	ConditionTraits traits;
	char	   *unknown_variable;
	const char *entity;			/* condition_entity_reads(): the entity asked about */
	ConditionEntityReads *reads;
} ConditionScan;

static bool
is_predicate(JsonPathItemType type)
{
	switch (type)
	{
		case jpiAnd:
		case jpiOr:
		case jpiNot:
		case jpiIsUnknown:
		case jpiEqual:
		case jpiNotEqual:
		case jpiLess:
		case jpiGreater:
		case jpiLessOrEqual:
		case jpiGreaterOrEqual:
		case jpiExists:
		case jpiStartsWith:
		case jpiLikeRegex:
			return true;
		default:
			return false;
	}
}

static bool
key_is(JsonPathItem *item, const char *name)
{
	int32		len;
	char	   *key;

	if (item->type != jpiKey)
		return false;
	key = jspGetString(item, &len);
	return len == (int32) strlen(name) && memcmp(key, name, len) == 0;
}

/*
 * A path from the document's root ($): what it reads of the entity asked
 * about.  Only $.<entity>.attrs.<key> is narrowed to a key; anything else
 * that may reach the entity reads it whole.
 */
static void
note_root_path(JsonPathItem *root, ConditionScan *scan)
{
	ConditionEntityReads *reads = scan->reads;
	JsonPathItem member;
	JsonPathItem attrs;
	JsonPathItem key;
	DecStr		name;
	int32		len;
	int			i;

	if (reads->use == CONDITION_READS_ENTITY)
		return;
	if (!jspGetNext(root, &member) || member.type != jpiKey)
	{
		reads->use = CONDITION_READS_ENTITY;
		return;
	}
	if (!key_is(&member, scan->entity))
		return;
	if (!jspGetNext(&member, &attrs) || !key_is(&attrs, "attrs") ||
		!jspGetNext(&attrs, &key) || key.type != jpiKey)
	{
		reads->use = CONDITION_READS_ENTITY;
		return;
	}
	name.ptr = jspGetString(&key, &len);
	name.len = len;
	for (i = 0; i < reads->n_keys; i++)
		if (reads->keys[i].len == name.len && memcmp(reads->keys[i].ptr, name.ptr, name.len) == 0)
			return;
	if (reads->n_keys == CONDITION_MAX_READ_KEYS)
	{
		reads->use = CONDITION_READS_ENTITY;
		return;
	}
	reads->keys[reads->n_keys++] = name;
	reads->use = CONDITION_READS_ATTR_KEYS;
}

/* Visits every item of a jsonpath, noting the variables it uses. */
static void
scan_item(JsonPathItem *item, ConditionScan *scan)
{
	JsonPathItem arg;
	JsonPathItem next;

	check_stack_depth();
	switch (item->type)
	{
		case jpiAnd:
		case jpiOr:
		case jpiEqual:
		case jpiNotEqual:
		case jpiLess:
		case jpiGreater:
		case jpiLessOrEqual:
		case jpiGreaterOrEqual:
		case jpiAdd:
		case jpiSub:
		case jpiMul:
		case jpiDiv:
		case jpiMod:
		case jpiStartsWith:
			jspGetLeftArg(item, &arg);
			scan_item(&arg, scan);
			jspGetRightArg(item, &arg);
			scan_item(&arg, scan);
			break;
		case jpiNot:
		case jpiIsUnknown:
		case jpiExists:
		case jpiPlus:
		case jpiMinus:
		case jpiFilter:
			jspGetArg(item, &arg);
			scan_item(&arg, scan);
			break;
		case jpiLikeRegex:
			jspInitByBuffer(&arg, item->base, item->content.like_regex.expr);
			scan_item(&arg, scan);
			break;
		case jpiIndexArray:
			{
				int			i;

				for (i = 0; i < item->content.array.nelems; i++)
				{
					JsonPathItem from;
					JsonPathItem to;

					if (jspGetArraySubscript(item, &from, &to, i))
						scan_item(&to, scan);
					scan_item(&from, scan);
				}
				break;
			}
		case jpiVariable:
			{
				int32		len;
				char	   *name = jspGetString(item, &len);

				if (len == 3 && memcmp(name, "now", 3) == 0)
					scan->traits.uses_now = true;
				else if (scan->unknown_variable == NULL)
					scan->unknown_variable = pnstrdup(name, len);
				break;
			}
		case jpiDatetime:
			scan->traits.may_raise = true;
			break;
		case jpiRoot:
			if (scan->reads)
				note_root_path(item, scan);
			break;
		default:
			/* literals, accessors and item methods have no sub-expressions */
			break;
	}
	if (jspGetNext(item, &next))
		scan_item(&next, scan);
}

static void
scan_condition(JsonPath *condition, ConditionScan *scan)
{
	JsonPathItem root;

	memset(scan, 0, sizeof(*scan));
	jspInit(&root, condition);
	scan_item(&root, scan);
}

ConditionTraits
condition_traits(JsonPath *condition)
{
	ConditionScan scan;

	scan_condition(condition, &scan);
	return scan.traits;
}

void
condition_entity_reads(JsonPath *condition, const char *entity, ConditionEntityReads *reads)
{
	ConditionScan scan;
	JsonPathItem root;

	memset(&scan, 0, sizeof(scan));
	memset(reads, 0, sizeof(*reads));
	scan.entity = entity;
	scan.reads = reads;
	jspInit(&root, condition);
	scan_item(&root, &scan);
}

/* Appends a tag, and for a value with bytes their length and the bytes. */
static void
append_tagged(StringInfo buf, char tag, const void *bytes, uint32 len)
{
	enlargeStringInfo(buf, 1 + sizeof(len) + len);
	buf->data[buf->len++] = tag;
	if (bytes == NULL)
	{
		buf->data[buf->len] = '\0';
		return;
	}
	memcpy(buf->data + buf->len, &len, sizeof(len));
	memcpy(buf->data + buf->len + sizeof(len), bytes, len);
	buf->len += sizeof(len) + len;
	buf->data[buf->len] = '\0';
}

static void
append_value_bytes(StringInfo buf, const JsonbValue *value)
{
	if (value == NULL)
		append_tagged(buf, 'm', NULL, 0);	/* missing */
	else if (value->type == jbvNull)
		append_tagged(buf, 'n', NULL, 0);
	else if (value->type == jbvBool)
		append_tagged(buf, value->val.boolean ? 't' : 'f', NULL, 0);
	else if (value->type == jbvString)
		append_tagged(buf, 's', value->val.string.val, value->val.string.len);
	else if (value->type == jbvNumeric)
		append_tagged(buf, 'd', value->val.numeric, VARSIZE_ANY(value->val.numeric));
	else
		append_tagged(buf, 'b', value->val.binary.data, value->val.binary.len);
}

void
condition_append_reads(StringInfo buf, const ConditionEntityReads *reads, Jsonb *attrs)
{
	int			k;

	for (k = 0; k < reads->n_keys; k++)
	{
		JsonbValue	value;

		append_value_bytes(buf, attrs &&
						   getKeyJsonValueFromContainer(&attrs->root, reads->keys[k].ptr,
														reads->keys[k].len, &value)
						   ? &value : NULL);
	}
}

PG_FUNCTION_INFO_V1(decide_check_condition);
Datum
decide_check_condition(PG_FUNCTION_ARGS)
{
	JsonPath   *condition = PG_GETARG_JSONPATH_P(0);
	JsonPathItem root;
	ConditionScan scan;

	if (VARSIZE(condition) > DECIDE_MAX_CONDITION_BYTES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("condition is too large"),
				 errdetail("It takes %zu bytes compiled; the limit is %d.",
						   (Size) VARSIZE(condition), DECIDE_MAX_CONDITION_BYTES)));
	jspInit(&root, condition);
	if (!is_predicate(root.type) || jspHasNext(&root))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("condition must be a jsonpath predicate"),
				 errdetail("A condition yields true, false or unknown; a path that selects values does not."),
				 errhint("Compare values, e.g. '$.resource.attrs.owner == $.actor.uid' or 'exists($.context.mfa ? (@ == true))'.")));
	scan_condition(condition, &scan);
	if (scan.unknown_variable)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("condition uses unknown variable $%s", scan.unknown_variable),
				 errhint("The only variable is $now, the time of the statement.")));
	PG_RETURN_BOOL(true);
}

static void
push_key(JsonbParseState **state, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &v);
}

static void
push_string(JsonbParseState **state, DecStr s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s.ptr;
	v.val.string.len = s.len;
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* Pushes a jsonb object as a value; NULL pushes {}. */
static void
push_object(JsonbParseState **state, Jsonb *object)
{
	JsonbValue	v;

	if (object == NULL)
	{
		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &object->root;
	v.val.binary.len = VARSIZE(object) - VARHDRSZ;
	pushJsonbValue(state, WJB_VALUE, &v);
}

static void
push_entity(JsonbParseState **state, const char *key, DecStr uid, Jsonb *attrs)
{
	push_key(state, key);
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	push_key(state, "uid");
	push_string(state, uid);
	push_key(state, "attrs");
	push_object(state, attrs);
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

static Jsonb *
build_document(ConditionRequest *request)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_entity(&state, "actor", request->actor, request->actor_attrs);
	push_key(&state, "action");
	push_string(&state, request->action);
	push_entity(&state, "resource", request->resource, request->resource_attrs);
	push_key(&state, "context");
	push_object(&state, request->context);
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

static Jsonb *
build_variables(void)
{
	JsonbParseState *state = NULL;
	JsonbValue *result;
	char		buf[MAXDATELEN + 1];
	int			utc = 0;
	DecStr		now;

	JsonEncodeDateTime(buf, TimestampTzGetDatum(GetCurrentStatementStartTimestamp()),
					   TIMESTAMPTZOID, &utc);
	now.ptr = buf;
	now.len = strlen(buf);
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_key(&state, "now");
	push_string(&state, now);
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

static DecConditionResult
match_silently(JsonPath *condition, ConditionTraits traits, ConditionRequest *request)
{
	LOCAL_FCINFO(fcinfo, 4);
	Datum		result;

	/*
	 * jsonb_path_match(target, path[, vars, silent]): with two arguments it
	 * is silent and has no variables.
	 */
	InitFunctionCallInfoData(*fcinfo, NULL, traits.uses_now ? 4 : 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(request->document);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = PointerGetDatum(condition);
	fcinfo->args[1].isnull = false;
	if (traits.uses_now)
	{
		fcinfo->args[2].value = JsonbPGetDatum(request->variables);
		fcinfo->args[2].isnull = false;
		fcinfo->args[3].value = BoolGetDatum(true); /* silent */
		fcinfo->args[3].isnull = false;
	}
	result = jsonb_path_match(fcinfo);
	if (fcinfo->isnull)
		return DEC_COND_UNKNOWN;
	return DatumGetBool(result) ? DEC_COND_TRUE : DEC_COND_FALSE;
}

/* Errors that must reach the caller rather than count as unknown. */
static bool
must_propagate(int sqlerrcode)
{
	int			category = ERRCODE_TO_CATEGORY(sqlerrcode);

	return category == ERRCODE_OPERATOR_INTERVENTION ||
		category == ERRCODE_INSUFFICIENT_RESOURCES ||
		category == ERRCODE_PROGRAM_LIMIT_EXCEEDED ||
		category == ERRCODE_INTERNAL_ERROR;
}

DecConditionResult
condition_evaluate(JsonPath *condition, ConditionTraits traits, ConditionRequest *request)
{
	MemoryContext context = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	DecConditionResult result;

	if (request->document == NULL)
		request->document = build_document(request);
	if (traits.uses_now && request->variables == NULL)
		request->variables = build_variables();
	if (!traits.may_raise)
		return match_silently(condition, traits, request);

	/* As PL/pgSQL's exception blocks do: a subtransaction to roll back. */
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(context);
	PG_TRY();
	{
		result = match_silently(condition, traits, request);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(context);
		CurrentResourceOwner = owner;
		if (must_propagate(error->sqlerrcode))
			ReThrowError(error);
		FreeErrorData(error);
		result = DEC_COND_UNKNOWN;
	}
	PG_END_TRY();
	return result;
}
