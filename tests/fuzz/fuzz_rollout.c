/* fuzz_rollout.c -- the rollout settings parser (codec/rollout_json.c),
 * the "rollout" object of an experiment definition. What parses prints to
 * a canonical object that parses back to the same canonical object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/experiment_json.h"
#include "codec/rollout_json.h"
#include "tests/fuzz/fuzz.h"

static struct core_experiment *exp_;

static void
init(void)
{
    const char *def =
        "{\"key\":\"r\",\"strategy\":\"canary\",\"arms\":[{\"name\":\"stable\","
        "\"weight\":95,\"control\":true},{\"name\":\"canary\",\"weight\":5}],"
        "\"metrics\":[{\"name\":\"err\",\"kind\":\"binary\",\"role\":"
        "\"guardrail\",\"direction\":\"decrease\"},{\"name\":\"ctr\","
        "\"kind\":\"binary\",\"role\":\"primary\"},{\"name\":\"lat\",\"kind\":"
        "\"ratio\",\"direction\":\"decrease\"}]}";
    char err[256];
    json_t *d = json_loads(def, 0, NULL);
    if (d == NULL || api_experiment_parse(d, &exp_, err, sizeof(err)) != AB_OK) {
        fprintf(stderr, "fuzz_rollout: %s\n", err);
        abort();
    }
    json_decref(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (exp_ == NULL)
        init();
    json_t *doc = fuzz_json(data, size);
    if (doc == NULL)
        return 0;
    struct core_rollout_config c, c2;
    char err[512];
    if (api_rollout_parse(doc, exp_, &c, err, sizeof(err)) == AB_OK) {
        json_t *j = api_rollout_json(&c);
        if (api_rollout_parse(j, exp_, &c2, err, sizeof(err)) != AB_OK)
            abort();
        json_t *j2 = api_rollout_json(&c2);
        if (!json_equal(j, j2))
            abort();
        json_decref(j);
        json_decref(j2);
    }
    json_decref(doc);
    return 0;
}
