/* fuzz_assign_body.c -- POST /v1/assign bodies (api/h_assign.c: unit,
 * attributes, experiments) against a fake service with two experiments,
 * one sticky whose store never answers (fake_service.c). */
#include <stdlib.h>

#include "api/handlers.h"
#include "service/app.h"
#include "tests/fuzz/fuzz.h"

extern struct app fuzz_app;
void fuzz_service_init(void);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_service_init();
    json_t *doc = fuzz_json(data, size);
    if (doc == NULL)
        return 0;
    struct api_resp resp = {0};
    struct api_req req = {0};
    req.method = "POST";
    req.path = "/v1/assign";
    req.body = (const char *)data;
    req.body_len = size;
    req.json = doc;
    req.scope = API_SCOPE_CLIENT;
    struct api_ctx ctx = {.app = &fuzz_app, .db = NULL};
    api_assign_post(&ctx, &req, &resp);
    fuzz_check_resp(&resp);
    json_decref(doc);
    return 0;
}
