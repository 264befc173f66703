/* fuzz.h -- what every libFuzzer harness in tests/fuzz/ shares.
 *
 * Each harness feeds one parser the fuzzer's bytes exactly as the HTTP
 * edge would (the JSON checks of api/server.c first: UTF-8, nesting depth,
 * jansson with duplicate keys refused), and asserts only what must hold
 * for any input: no crash, no sanitizer report, no leak, and an answer
 * that is either a success or the one error shape. */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "lib/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The generic body checks of api/server.c; NULL when refused there. */
static inline json_t *
fuzz_json(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (size == 0 || !ab_utf8_valid(s, size) ||
        api_json_depth(s, size) > API_MAX_DEPTH)
        return NULL;
    json_error_t jerr;
    return json_loadb(s, size, JSON_REJECT_DUPLICATES, &jerr);
}

/* An answer is a success or the one error shape; abort() otherwise. */
void fuzz_check_resp(struct api_resp *r);

#endif /* TESTS_FUZZ_FUZZ_H */
