/*
 * Unit tests for proto/: the topic catalog, the event JSON Schemas, the examples and the README.
 *
 * No JSON Schema library for C is packaged in Debian, so this file carries a small validator of
 * the subset the schemas use ($ref, type, enum, const, required, properties, additionalProperties,
 * items, min/max, min/maxLength, min/maxItems, pattern, format date-time, allOf, if/then/else).
 * A schema that uses any other keyword fails the test, so the subset cannot silently drift.
 * Examples are checked strictly: a field absent from the schema's properties is an error (the
 * schemas themselves leave additional properties open so that old consumers accept new fields).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc_event.h"
#include "cc_time.h"

#define PROTO_SCHEMA_DIALECT "https://json-schema.org/draft/2020-12/schema"
#define PROTO_ERR_LEN        512
#define PROTO_MAX_FILES      256

/* Topics whose every type must have a schema and an example (issue 2). A topic outside this list
 * needs them too as soon as one of its types has a schema. */
static const char *const proto_documented_topics[] = {
    "cc.interactions", "cc.agents", "cc.routing.requests", "cc.routing.decisions", "cc.deadletter",
};

static char proto_root[PATH_MAX];
static json_t *proto_catalog; /* proto/topics.json */
static json_t *proto_docs;    /* schema file name -> loaded schema (the validator's $ref cache) */

/* ---- files ----------------------------------------------------------------------------------- */

/* Formats a path into out[PATH_MAX]; a path that does not fit fails the test. */
__attribute__((format(printf, 2, 3))) static void proto_path(char *out, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && n < PATH_MAX, "expected a path shorter than %d bytes", PATH_MAX);
}

static bool proto_is_root(const char *dir)
{
    char path[PATH_MAX];

    proto_path(path, "%s/proto/topics.json", dir);
    return access(path, R_OK) == 0;
}

/* CC_TEST_TOP, else the first of cwd and its parents that holds proto/topics.json. */
static void proto_find_root(void)
{
    const char *top = getenv("CC_TEST_TOP");
    char dir[PATH_MAX];
    char *slash;

    if (top && *top) {
        proto_path(proto_root, "%s", top);
        cr_assert(proto_is_root(proto_root), "expected proto/topics.json under CC_TEST_TOP=%s",
                  top);
        return;
    }
    cr_assert_not_null(getcwd(dir, sizeof(dir)), "expected getcwd to work");
    for (;;) {
        if (proto_is_root(dir)) {
            proto_path(proto_root, "%s", dir);
            return;
        }
        slash = strrchr(dir, '/');
        cr_assert(slash && slash != dir,
                  "expected proto/topics.json in the working directory or a parent "
                  "(or CC_TEST_TOP set)");
        *slash = '\0';
    }
}

static json_t *proto_load(const char *rel)
{
    char path[PATH_MAX];
    json_error_t jerr;
    json_t *doc;

    proto_path(path, "%s/%s", proto_root, rel);
    doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    cr_assert_not_null(doc, "expected %s to be valid JSON: line %d column %d: %s", rel, jerr.line,
                       jerr.column, jerr.text);
    return doc;
}

/* Reads a whole file; the caller frees. */
static char *proto_read(const char *rel, size_t *len)
{
    char path[PATH_MAX];
    FILE *f;
    char *buf;
    long n;

    proto_path(path, "%s/%s", proto_root, rel);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "expected to open %s: %s", rel, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert(n >= 0, "expected a size for %s", rel);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n, "expected to read all of %s", rel);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int proto_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the files of proto/<sub> whose names end with suffix, sorted; returns the count. */
static size_t proto_list(const char *sub, const char *suffix, char *names[PROTO_MAX_FILES])
{
    char path[PATH_MAX];
    struct dirent *de;
    size_t n = 0, slen = strlen(suffix);
    DIR *d;

    proto_path(path, "%s/proto/%s", proto_root, sub);
    d = opendir(path);
    cr_assert_not_null(d, "expected the folder proto/%s", sub);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (de->d_name[0] == '.' || len <= slen || strcmp(de->d_name + len - slen, suffix) != 0)
            continue;
        cr_assert(n < PROTO_MAX_FILES, "expected fewer than %d files in proto/%s", PROTO_MAX_FILES,
                  sub);
        names[n] = strdup(de->d_name);
        cr_assert_not_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), proto_cmp_names);
    return n;
}

static void proto_free_list(char *names[], size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

/* ---- catalog --------------------------------------------------------------------------------- */

/* The catalog entry of the topic that lists type, or NULL. */
static json_t *proto_topic_of_type(const char *type)
{
    size_t i, j;
    json_t *topic, *t;

    json_array_foreach(json_object_get(proto_catalog, "topics"), i, topic)
    {
        json_array_foreach(json_object_get(topic, "types"), j, t)
        {
            if (json_is_string(t) && strcmp(json_string_value(t), type) == 0)
                return topic;
        }
    }
    return NULL;
}

static bool proto_file_exists(const char *dir, const char *name, const char *suffix)
{
    char path[PATH_MAX];

    proto_path(path, "%s/proto/%s/%s%s", proto_root, dir, name, suffix);
    return access(path, R_OK) == 0;
}

/* ---- the validator --------------------------------------------------------------------------- */

struct proto_v {
    char err[PROTO_ERR_LEN]; /* the first error, with its location */
    bool failed;
};

__attribute__((format(printf, 3, 4))) static int proto_fail(struct proto_v *v, const char *at,
                                                            const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!v->failed) {
        n = snprintf(v->err, sizeof(v->err), "%.200s: ", at);
        va_start(ap, fmt);
        vsnprintf(v->err + n, sizeof(v->err) - (size_t)n, fmt, ap);
        va_end(ap);
        v->failed = true;
    }
    return -EINVAL;
}

/* A schema document by file name, loaded once into proto_docs (borrowed). */
static json_t *proto_doc(const char *file)
{
    char rel[PATH_MAX];
    json_t *doc = json_object_get(proto_docs, file);

    if (doc)
        return doc;
    proto_path(rel, "proto/schemas/%s", file);
    doc = proto_load(rel);
    cr_assert_eq(json_object_set_new(proto_docs, file, doc), 0);
    return doc;
}

/* Resolves "file.schema.json#/json/pointer" or "#/json/pointer" against *doc; on success *doc
 * becomes the target's document. Returns the target (borrowed) or NULL. */
static json_t *proto_resolve(const char *ref, json_t **doc)
{
    char file[256], pointer[256], *seg, *save = NULL;
    const char *hash = strchr(ref, '#');
    json_t *node;

    if (!hash || (size_t)(hash - ref) >= sizeof(file))
        return NULL;
    snprintf(file, sizeof(file), "%.*s", (int)(hash - ref), ref);
    if (file[0])
        *doc = proto_doc(file);
    snprintf(pointer, sizeof(pointer), "%s", hash + 1);
    node = *doc;
    for (seg = strtok_r(pointer, "/", &save); seg && node; seg = strtok_r(NULL, "/", &save))
        node = json_object_get(node, seg);
    return node;
}

static bool proto_type_is(const char *type, const json_t *inst)
{
    if (strcmp(type, "string") == 0)
        return json_is_string(inst);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(inst);
    if (strcmp(type, "number") == 0)
        return json_is_number(inst);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(inst);
    if (strcmp(type, "object") == 0)
        return json_is_object(inst);
    if (strcmp(type, "array") == 0)
        return json_is_array(inst);
    if (strcmp(type, "null") == 0)
        return json_is_null(inst);
    return false;
}

static size_t proto_utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int proto_check(struct proto_v *v, json_t *schema, json_t *doc, json_t *inst, const char *at,
                       bool strict);

static int proto_check_type(struct proto_v *v, json_t *type, json_t *inst, const char *at)
{
    size_t i;
    json_t *t;

    if (json_is_string(type))
        return proto_type_is(json_string_value(type), inst)
                   ? 0
                   : proto_fail(v, at, "expected type %s", json_string_value(type));
    json_array_foreach(type, i, t)
    {
        if (proto_type_is(json_string_value(t), inst))
            return 0;
    }
    return proto_fail(v, at, "expected one of the types of the schema");
}

static int proto_check_enum(struct proto_v *v, json_t *values, json_t *inst, const char *at)
{
    size_t i;
    json_t *e;

    json_array_foreach(values, i, e)
    {
        if (json_equal(e, inst))
            return 0;
    }
    return proto_fail(v, at, "expected a value of the enum");
}

static int proto_check_number(struct proto_v *v, json_t *schema, json_t *inst, const char *at)
{
    json_t *min = json_object_get(schema, "minimum"), *max = json_object_get(schema, "maximum");

    if (!json_is_number(inst))
        return 0;
    if (min && json_number_value(inst) < json_number_value(min))
        return proto_fail(v, at, "expected >= %g", json_number_value(min));
    if (max && json_number_value(inst) > json_number_value(max))
        return proto_fail(v, at, "expected <= %g", json_number_value(max));
    return 0;
}

static int proto_check_string(struct proto_v *v, json_t *schema, json_t *inst, const char *at)
{
    json_t *minl = json_object_get(schema, "minLength"),
           *maxl = json_object_get(schema, "maxLength");
    json_t *pattern = json_object_get(schema, "pattern"),
           *format = json_object_get(schema, "format");
    const char *s = json_string_value(inst);
    int64_t ms;
    regex_t re;
    int rc;

    if (!json_is_string(inst))
        return 0;
    if (minl && (json_int_t)proto_utf8_chars(s) < json_integer_value(minl))
        return proto_fail(v, at, "expected at least %lld characters",
                          (long long)json_integer_value(minl));
    if (maxl && (json_int_t)proto_utf8_chars(s) > json_integer_value(maxl))
        return proto_fail(v, at, "expected at most %lld characters",
                          (long long)json_integer_value(maxl));
    if (pattern) {
        cr_assert_eq(regcomp(&re, json_string_value(pattern), REG_EXTENDED | REG_NOSUB), 0,
                     "expected pattern '%s' to compile as a POSIX ERE", json_string_value(pattern));
        rc = regexec(&re, s, 0, NULL, 0);
        regfree(&re);
        if (rc != 0)
            return proto_fail(v, at, "expected to match '%s'", json_string_value(pattern));
    }
    if (format && strcmp(json_string_value(format), "date-time") == 0 &&
        cc_time_parse_iso8601(s, &ms) < 0)
        return proto_fail(v, at, "expected an RFC 3339 date-time");
    return 0;
}

static int proto_check_object(struct proto_v *v, json_t *schema, json_t *doc, json_t *inst,
                              const char *at, bool strict)
{
    json_t *props = json_object_get(schema, "properties");
    json_t *extra = json_object_get(schema, "additionalProperties");
    json_t *required = json_object_get(schema, "required"), *r, *value, *sub;
    char where[PROTO_ERR_LEN];
    const char *key;
    size_t i;

    if (!json_is_object(inst))
        return 0;
    json_array_foreach(required, i, r)
    {
        if (!json_object_get(inst, json_string_value(r)))
            return proto_fail(v, at, "expected the required field '%s'", json_string_value(r));
    }
    if (!props && !extra)
        return 0;
    json_object_foreach(inst, key, value)
    {
        snprintf(where, sizeof(where), "%s.%s", at, key);
        sub = json_object_get(props, key);
        if (!sub && json_is_object(extra))
            sub = extra;
        if (sub) {
            if (proto_check(v, sub, doc, value, where, strict) < 0)
                return -EINVAL;
        } else if (json_is_false(extra) || (strict && !extra)) {
            return proto_fail(v, where, "expected no field absent from the schema's properties");
        }
    }
    return 0;
}

static int proto_check_array(struct proto_v *v, json_t *schema, json_t *doc, json_t *inst,
                             const char *at, bool strict)
{
    json_t *items = json_object_get(schema, "items"), *e;
    json_t *mini = json_object_get(schema, "minItems"), *maxi = json_object_get(schema, "maxItems");
    char where[PROTO_ERR_LEN];
    size_t i;

    if (!json_is_array(inst))
        return 0;
    if (mini && (json_int_t)json_array_size(inst) < json_integer_value(mini))
        return proto_fail(v, at, "expected at least %lld items",
                          (long long)json_integer_value(mini));
    if (maxi && (json_int_t)json_array_size(inst) > json_integer_value(maxi))
        return proto_fail(v, at, "expected at most %lld items",
                          (long long)json_integer_value(maxi));
    json_array_foreach(items ? inst : NULL, i, e)
    {
        snprintf(where, sizeof(where), "%s[%zu]", at, i);
        if (proto_check(v, items, doc, e, where, strict) < 0)
            return -EINVAL;
    }
    return 0;
}

/* if/then/else: the condition is evaluated silently and never strictly. */
static int proto_check_conditional(struct proto_v *v, json_t *schema, json_t *doc, json_t *inst,
                                   const char *at, bool strict)
{
    json_t *cond = json_object_get(schema, "if"), *branch, *e;
    struct proto_v probe = {.failed = false};
    size_t i;

    json_array_foreach(json_object_get(schema, "allOf"), i, e)
    {
        if (proto_check(v, e, doc, inst, at, strict) < 0)
            return -EINVAL;
    }
    if (!cond)
        return 0;
    branch = proto_check(&probe, cond, doc, inst, at, false) == 0 ? json_object_get(schema, "then")
                                                                  : json_object_get(schema, "else");
    return branch ? proto_check(v, branch, doc, inst, at, strict) : 0;
}

static int proto_check(struct proto_v *v, json_t *schema, json_t *doc, json_t *inst, const char *at,
                       bool strict)
{
    json_t *ref = json_object_get(schema, "$ref"), *x;

    if (ref) {
        json_t *target_doc = doc, *target = proto_resolve(json_string_value(ref), &target_doc);

        if (!target)
            return proto_fail(v, at, "unresolvable $ref '%s'", json_string_value(ref));
        if (proto_check(v, target, target_doc, inst, at, strict) < 0)
            return -EINVAL;
    }
    if ((x = json_object_get(schema, "type")) && proto_check_type(v, x, inst, at) < 0)
        return -EINVAL;
    if ((x = json_object_get(schema, "enum")) && proto_check_enum(v, x, inst, at) < 0)
        return -EINVAL;
    if ((x = json_object_get(schema, "const")) && !json_equal(x, inst))
        return proto_fail(v, at, "expected the schema's const value");
    if (proto_check_number(v, schema, inst, at) < 0 || proto_check_string(v, schema, inst, at) < 0)
        return -EINVAL;
    if (proto_check_object(v, schema, doc, inst, at, strict) < 0 ||
        proto_check_array(v, schema, doc, inst, at, strict) < 0)
        return -EINVAL;
    return proto_check_conditional(v, schema, doc, inst, at, strict);
}

/* Validates inst against the schema file (strictly); 0 or -EINVAL with the reason in v->err. */
static int proto_validate(struct proto_v *v, const char *schema_file, json_t *inst, const char *at)
{
    json_t *doc = proto_doc(schema_file);

    v->failed = false;
    v->err[0] = '\0';
    return proto_check(v, doc, doc, inst, at, true);
}

/* Every keyword of every subschema is one the validator implements or an annotation. */
static void proto_assert_known_keywords(json_t *schema, const char *file)
{
    static const char *const known[] = {
        "$schema",   "$id",     "title",  "description", "version",  "$comment", "$ref",
        "type",      "enum",    "const",  "required",    "minimum",  "maximum",  "minLength",
        "maxLength", "pattern", "format", "minItems",    "maxItems", "default",  "examples",
    };
    const char *key;
    json_t *value, *e;
    size_t i;
    bool ok;

    cr_assert(json_is_object(schema), "expected every subschema of %s to be an object", file);
    json_object_foreach(schema, key, value)
    {
        if (strcmp(key, "properties") == 0 || strcmp(key, "$defs") == 0) {
            const char *k2;
            json_t *sub;

            json_object_foreach(value, k2, sub) proto_assert_known_keywords(sub, file);
            continue;
        }
        if (strcmp(key, "items") == 0 || strcmp(key, "if") == 0 || strcmp(key, "then") == 0 ||
            strcmp(key, "else") == 0 ||
            (strcmp(key, "additionalProperties") == 0 && json_is_object(value))) {
            proto_assert_known_keywords(value, file);
            continue;
        }
        if (strcmp(key, "allOf") == 0) {
            json_array_foreach(value, i, e) proto_assert_known_keywords(e, file);
            continue;
        }
        if (strcmp(key, "additionalProperties") == 0)
            continue; /* a boolean */
        if (strcmp(key, "format") == 0)
            cr_assert(strcmp(json_string_value(value), "date-time") == 0 ||
                          strcmp(json_string_value(value), "uri-reference") == 0,
                      "expected only the formats date-time and uri-reference in %s", file);
        ok = false;
        for (i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
            ok = strcmp(key, known[i]) == 0;
        cr_assert(ok, "expected only keywords this test's validator implements in %s, got '%s'",
                  file, key);
    }
}

/* ---- suite ------------------------------------------------------------------------------------
 */

static void proto_setup(void)
{
    proto_find_root();
    proto_catalog = proto_load("proto/topics.json");
    proto_docs = json_object();
    cr_assert_not_null(proto_docs);
}

static void proto_teardown(void)
{
    json_decref(proto_catalog);
    json_decref(proto_docs);
    proto_catalog = proto_docs = NULL;
}

TestSuite(proto_schemas, .init = proto_setup, .fini = proto_teardown, .timeout = 30);

/* Loads example proto/examples/<type>.json; the caller decrefs. */
static json_t *proto_example(const char *type)
{
    char rel[PATH_MAX];

    proto_path(rel, "proto/examples/%s.json", type);
    return proto_load(rel);
}

Test(proto_schemas, catalog_has_unique_topics_with_keys_and_at_least_six_partitions)
{
    json_t *topics = json_object_get(proto_catalog, "topics"), *topic, *t;
    json_t *names = json_object(), *types = json_object();
    size_t i, j;

    cr_assert(json_is_array(topics) && json_array_size(topics) > 0,
              "expected a non-empty 'topics' array in proto/topics.json");
    json_array_foreach(topics, i, topic)
    {
        const char *name = json_string_value(json_object_get(topic, "name"));
        json_t *key = json_object_get(topic, "key"), *parts = json_object_get(topic, "partitions");

        cr_assert(name && strncmp(name, "cc.", 3) == 0, "expected topic %zu named cc.*", i);
        cr_assert_null(json_object_get(names, name), "expected topic '%s' only once", name);
        json_object_set_new(names, name, json_true());
        cr_assert(json_is_string(key) && json_string_length(key) > 0,
                  "expected a key for topic '%s'", name);
        cr_assert(json_is_integer(parts) && json_integer_value(parts) >= 6,
                  "expected at least 6 partitions for topic '%s'", name);
        cr_assert(json_is_string(json_object_get(topic, "description")),
                  "expected a description for topic '%s'", name);
        cr_assert(json_array_size(json_object_get(topic, "types")) > 0,
                  "expected event types for topic '%s'", name);
        json_array_foreach(json_object_get(topic, "types"), j, t)
        {
            const char *type = json_string_value(t);

            cr_assert(type && strncmp(type, "cc.", 3) == 0,
                      "expected cc.* type names in topic '%s'", name);
            cr_assert_null(json_object_get(types, type), "expected type '%s' in one topic only",
                           type);
            json_object_set_new(types, type, json_true());
        }
    }
    json_decref(names);
    json_decref(types);
}

Test(proto_schemas, every_schema_parses_and_has_id_title_description_and_version)
{
    char *files[PROTO_MAX_FILES], rel[PATH_MAX];
    size_t n = proto_list("schemas", ".json", files);

    cr_assert(n >= 2, "expected the envelope and event schemas in proto/schemas");
    for (size_t i = 0; i < n; i++) {
        json_t *doc;
        const char *id, *slash;

        cr_assert(strstr(files[i], ".schema.json"), "expected %s to be named *.schema.json",
                  files[i]);
        proto_path(rel, "proto/schemas/%s", files[i]);
        doc = proto_load(rel);
        cr_assert_str_eq(json_string_value(json_object_get(doc, "$schema")), PROTO_SCHEMA_DIALECT,
                         "expected %s to declare draft 2020-12", files[i]);
        id = json_string_value(json_object_get(doc, "$id"));
        slash = id ? strrchr(id, '/') : NULL;
        cr_assert(slash && strcmp(slash + 1, files[i]) == 0,
                  "expected the $id of %s to end with its file name", files[i]);
        cr_assert(json_string_length(json_object_get(doc, "title")) > 0, "expected a title in %s",
                  files[i]);
        cr_assert(json_string_length(json_object_get(doc, "description")) > 0,
                  "expected a description in %s", files[i]);
        cr_assert(json_integer_value(json_object_get(doc, "version")) >= 1,
                  "expected a version >= 1 in %s", files[i]);
        proto_assert_known_keywords(doc, files[i]);
        json_decref(doc);
    }
    proto_free_list(files, n);
}

Test(proto_schemas, every_event_schema_and_example_names_a_catalog_type)
{
    char *files[PROTO_MAX_FILES], type[256];
    size_t n = proto_list("schemas", ".schema.json", files);

    for (size_t i = 0; i < n; i++) {
        if (strncmp(files[i], "cc.", 3) != 0)
            continue; /* envelope, common */
        snprintf(type, sizeof(type), "%.*s", (int)(strlen(files[i]) - strlen(".schema.json")),
                 files[i]);
        cr_assert_not_null(proto_topic_of_type(type),
                           "expected schema %s to describe a type of proto/topics.json", files[i]);
        cr_assert(proto_file_exists("examples", type, ".json"),
                  "expected an example proto/examples/%s.json", type);
    }
    proto_free_list(files, n);
    n = proto_list("examples", ".json", files);
    cr_assert(n > 0, "expected examples in proto/examples");
    for (size_t i = 0; i < n; i++) {
        snprintf(type, sizeof(type), "%.*s", (int)(strlen(files[i]) - strlen(".json")), files[i]);
        cr_assert_not_null(proto_topic_of_type(type),
                           "expected example %s to be named for a catalog type", files[i]);
    }
    proto_free_list(files, n);
}

Test(proto_schemas, every_type_of_a_documented_topic_has_a_schema_and_an_example)
{
    json_t *topic, *t;
    size_t i, j, k;

    json_array_foreach(json_object_get(proto_catalog, "topics"), i, topic)
    {
        const char *name = json_string_value(json_object_get(topic, "name"));
        bool documented = false;

        for (k = 0; k < sizeof(proto_documented_topics) / sizeof(proto_documented_topics[0]); k++)
            documented |= strcmp(name, proto_documented_topics[k]) == 0;
        json_array_foreach(json_object_get(topic, "types"), j, t) documented |=
            proto_file_exists("schemas", json_string_value(t), ".schema.json");
        if (!documented)
            continue;
        json_array_foreach(json_object_get(topic, "types"), j, t)
        {
            cr_expect(proto_file_exists("schemas", json_string_value(t), ".schema.json"),
                      "expected proto/schemas/%s.schema.json (topic %s)", json_string_value(t),
                      name);
            cr_expect(proto_file_exists("examples", json_string_value(t), ".json"),
                      "expected proto/examples/%s.json (topic %s)", json_string_value(t), name);
        }
    }
}

Test(proto_schemas, every_example_is_an_envelope_that_cc_event_parse_accepts)
{
    char *files[PROTO_MAX_FILES], rel[PATH_MAX], err[256];
    size_t n = proto_list("examples", ".json", files), len;

    for (size_t i = 0; i < n; i++) {
        cc_event ev;
        char *bytes;

        proto_path(rel, "proto/examples/%s", files[i]);
        bytes = proto_read(rel, &len);
        err[0] = '\0';
        cr_assert_eq(cc_event_parse(bytes, len, &ev, err, sizeof(err)), 0,
                     "expected %s to be a valid envelope: %s", files[i], err);
        cr_assert(strncmp(files[i], ev.type, strlen(ev.type)) == 0 &&
                      strcmp(files[i] + strlen(ev.type), ".json") == 0,
                  "expected %s to hold an event of type %s", files[i], ev.type);
        cr_assert_not_null(proto_topic_of_type(ev.type), "expected type %s in proto/topics.json",
                           ev.type);
        cr_assert(json_is_object(ev.data), "expected a data object in %s", files[i]);
        cc_event_clear(&ev);
        free(bytes);
    }
    proto_free_list(files, n);
}

Test(proto_schemas, every_example_matches_the_envelope_schema_and_its_data_schema)
{
    char *files[PROTO_MAX_FILES], rel[PATH_MAX], schema[300];
    size_t n = proto_list("examples", ".json", files);
    struct proto_v v;

    for (size_t i = 0; i < n; i++) {
        json_t *ex;
        const char *type;

        proto_path(rel, "proto/examples/%s", files[i]);
        ex = proto_load(rel);
        cr_assert_eq(proto_validate(&v, "envelope.schema.json", ex, files[i]), 0,
                     "expected %s to match envelope.schema.json: %s", files[i], v.err);
        type = json_string_value(json_object_get(ex, "type"));
        snprintf(schema, sizeof(schema), "%s.schema.json", type);
        cr_assert(proto_file_exists("schemas", type, ".schema.json"),
                  "expected a schema for the example's type %s", type);
        snprintf(rel, sizeof(rel), "%s data", files[i]);
        cr_assert_eq(proto_validate(&v, schema, json_object_get(ex, "data"), rel), 0,
                     "expected the data of %s to match %s: %s", files[i], schema, v.err);
        json_decref(ex);
    }
    proto_free_list(files, n);
}

/* The validator must be able to say no: each broken copy of an example is rejected. */
static void proto_expect_rejected(const char *type, const char *field, json_t *value,
                                  const char *why)
{
    char schema[300];
    struct proto_v v;
    json_t *ex = proto_example(type), *data = json_object_get(ex, "data");

    if (value)
        json_object_set_new(data, field, value);
    else
        json_object_del(data, field);
    snprintf(schema, sizeof(schema), "%s.schema.json", type);
    cr_expect_neq(proto_validate(&v, schema, data, "data"), 0,
                  "expected %s with %s to be rejected (%s)", type, field, why);
    json_decref(ex);
}

Test(proto_schemas, validator_rejects_broken_examples)
{
    proto_expect_rejected("cc.interaction.created", "channel", NULL, "missing required field");
    proto_expect_rejected("cc.interaction.created", "channel", json_string("fax"), "not in enum");
    proto_expect_rejected("cc.interaction.created", "priority", json_string("10"), "wrong type");
    proto_expect_rejected("cc.interaction.created", "priority", json_integer(1001), "over maximum");
    proto_expect_rejected("cc.interaction.created", "queue", json_string("x"), "unknown field");
    proto_expect_rejected("cc.interaction.created", "queue_id", json_string("bad id!"),
                          "pattern of common.schema.json#/$defs/id");
    proto_expect_rejected("cc.interaction.answered", "agent_id", NULL,
                          "answered_by agent requires agent_id (if/then)");
    proto_expect_rejected("cc.routing.route", "skills",
                          json_pack("[{s:s, s:i}]", "skill", "billing", "min_proficiency", 6),
                          "proficiency above 5 inside an array item");
    proto_expect_rejected("cc.routing.callback", "scheduled_at", json_string("tomorrow"),
                          "not a date-time");
    proto_expect_rejected("cc.agent.state_changed", "to_state", json_string("not_ready"),
                          "not_ready requires a reason_code");
}

Test(proto_schemas, envelope_schema_rejects_what_cc_event_rejects)
{
    static const char *const attrs[] = {"specversion", "id", "source", "type", "time", "tenant"};
    struct proto_v v;

    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        json_t *ex = proto_example("cc.interaction.created");

        json_object_del(ex, attrs[i]);
        cr_expect_neq(proto_validate(&v, "envelope.schema.json", ex, "envelope"), 0,
                      "expected an envelope without '%s' to be rejected", attrs[i]);
        json_decref(ex);
    }
    json_t *ex = proto_example("cc.interaction.created");
    json_object_set_new(ex, "tenant", json_string("acme corp"));
    cr_expect_neq(proto_validate(&v, "envelope.schema.json", ex, "envelope"), 0,
                  "expected a tenant with a blank to be rejected");
    json_object_set_new(ex, "tenant", json_string("acme"));
    json_object_set_new(ex, "type", json_string("interaction.created"));
    cr_expect_neq(proto_validate(&v, "envelope.schema.json", ex, "envelope"), 0,
                  "expected a type without the cc. prefix to be rejected");
    json_decref(ex);
}

/* The README shows each example under a heading "#### `<type>`" as a ```json block. */
Test(proto_schemas, readme_shows_every_example_unchanged)
{
    char *files[PROTO_MAX_FILES], heading[300];
    size_t n = proto_list("examples", ".json", files), len;
    char *readme = proto_read("proto/README.md", &len);

    for (size_t i = 0; i < n; i++) {
        const char *at, *start, *end;
        json_error_t jerr;
        json_t *shown, *ex;

        snprintf(heading, sizeof(heading), "#### `%.*s`\n", (int)(strlen(files[i]) - 5), files[i]);
        at = strstr(readme, heading);
        cr_assert_not_null(at, "expected proto/README.md to have the heading %s", heading);
        start = strstr(at, "```json\n");
        cr_assert_not_null(start, "expected a ```json block after %s", heading);
        start += strlen("```json\n");
        end = strstr(start, "\n```");
        cr_assert_not_null(end, "expected the ```json block after %s to be closed", heading);
        shown = json_loadb(start, (size_t)(end - start), 0, &jerr);
        cr_assert_not_null(shown, "expected valid JSON under %s: %s", heading, jerr.text);
        snprintf(heading, sizeof(heading), "%.*s", (int)(strlen(files[i]) - 5), files[i]);
        ex = proto_example(heading);
        cr_expect(json_equal(shown, ex), "expected README's %s example to equal proto/examples/%s",
                  heading, files[i]);
        json_decref(ex);
        json_decref(shown);
    }
    free(readme);
    proto_free_list(files, n);
}

Test(proto_schemas, openapi_common_components_exist)
{
    size_t len;
    char *text = proto_read("proto/openapi/common.yaml", &len);

    cr_expect(strncmp(text, "openapi: 3.1.", 13) == 0 || strstr(text, "\nopenapi: 3.1."),
              "expected proto/openapi/common.yaml to be an OpenAPI 3.1 document");
    cr_expect(strstr(text, "\n    Problem:\n"), "expected a Problem schema component");
    cr_expect(strstr(text, "\n    bearerAuth:\n"), "expected a bearerAuth security scheme");
    cr_expect(strstr(text, "\n    Limit:\n") && strstr(text, "\n    Cursor:\n"),
              "expected Limit and Cursor pagination parameters");
    free(text);
}
