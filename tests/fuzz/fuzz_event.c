/* fuzz_event.c -- POST /v1/events bodies (api/h_events.c: JSON array or
 * NDJSON, then each event checked on its own) against a fake service with
 * two experiments (fake_service.c). Every answer is a 202 with counts or
 * the one error shape. The first input byte picks the content type. */
#include <stdlib.h>
#include <string.h>

#include "api/handlers.h"
#include "service/app.h"
#include "tests/fuzz/fuzz.h"
#include "lib/utf8.h"

extern struct app fuzz_app;
void fuzz_service_init(void);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_service_init();
    if (size < 1)
        return 0;
    bool ndjson = data[0] & 1;
    data++;
    size--;
    char *body = malloc(size + 1);
    memcpy(body, data, size);
    body[size] = '\0';
    if (!ab_utf8_valid(body, size)) {
        free(body);
        return 0;
    }
    struct api_resp resp = {0}, late = {0};
    struct api_req req = {0};
    req.method = "POST";
    req.path = "/v1/events";
    req.body = body;
    req.body_len = size;
    req.content_type = ndjson ? "application/x-ndjson" : "application/json";
    req.scope = API_SCOPE_CLIENT;
    req.defer = &late;
    struct api_ctx ctx = {.app = &fuzz_app, .db = NULL};
    api_events_post(&ctx, &req, &resp);
    if (resp.status == API_DEFERRED)
        fuzz_check_resp(&late);
    else
        fuzz_check_resp(&resp);
    free(body);
    return 0;
}
