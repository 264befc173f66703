/* fuzz_analyze.c -- the analysis request parser and engine
 * (codec/analyze.c): POST /v1/analyze and `arbiter analyze`. Any input
 * gets an answer or a refusal with a message; the answer is valid JSON
 * with no NaN or infinity (jansson refuses to print them). */
#include <stdlib.h>

#include <gsl/gsl_errno.h>

#include "codec/analyze.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        gsl_set_error_handler_off();
        once = 1;
    }
    json_t *doc = fuzz_json(data, size);
    if (doc == NULL)
        return 0;
    json_t *out = NULL;
    char err[512] = "";
    ab_status rc = api_analyze(doc, &out, err, sizeof(err));
    if (rc == AB_OK) {
        char *text = json_dumps(out, JSON_COMPACT);
        if (text == NULL)
            abort();
        free(text);
        json_decref(out);
    } else if (err[0] == '\0') {
        abort();
    }
    json_decref(doc);
    return 0;
}
