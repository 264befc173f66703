/* fuzz_experiment.c -- the experiment definition parser
 * (codec/experiment_json.c): POST /v1/experiments and PATCH bodies. A
 * definition that parses must also print and parse back to the same
 * definition (the stored text is re-read at every reload). */
#include <stdlib.h>
#include <string.h>

#include "codec/experiment_json.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = fuzz_json(data, size);
    if (doc == NULL)
        return 0;
    struct core_experiment *e = NULL, *again = NULL;
    char err[512];
    if (api_experiment_parse(doc, &e, err, sizeof(err)) == AB_OK) {
        json_t *def = api_experiment_definition(e);
        if (api_experiment_parse(def, &again, err, sizeof(err)) != AB_OK)
            abort(); /* what we store must load again */
        char *a = json_dumps(def, JSON_SORT_KEYS | JSON_COMPACT);
        json_t *def2 = api_experiment_definition(again);
        char *b = json_dumps(def2, JSON_SORT_KEYS | JSON_COMPACT);
        if (strcmp(a, b) != 0)
            abort();
        free(a);
        free(b);
        json_decref(def);
        json_decref(def2);
        (void)api_experiment_rehash_field(e, again);
        core_experiment_free(again);
        core_experiment_free(e);
    } else if (err[0] == '\0') {
        abort(); /* a refusal names its reason */
    }
    json_decref(doc);
    return 0;
}
