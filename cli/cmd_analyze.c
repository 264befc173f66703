/* cmd_analyze.c -- `arbiter analyze`: one JSON request on stdin, one JSON
 * answer on stdout (codec/analyze.h has the format). Exit 0 with the answer,
 * 2 with a message on stderr when the request is malformed, 1 on an
 * internal failure. Reads at most 64 MiB.
 */
#include <gsl/gsl_errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/analyze.h"
#include "cli/commands.h"
#include "lib/json_text.h"

#define MAX_INPUT (64 * MB)

static const char usage[] =
    "usage: arbiter analyze < request.json > answer.json\n"
    "Reads one analysis request (JSON) on stdin and writes the answer on\n"
    "stdout. Exit status: 0 answered, 2 malformed request, 1 failure.\n"
    "The same document is the body of POST /v1/analyze.\n"
    "\n"
    "Request (unknown fields are refused):\n"
    "  metric       {\"kind\": mean|binary|sum|ratio,\n"
    "                \"direction\": increase|decrease}       kind required\n"
    "  arms         [{\"name\", \"n\", \"sum\", \"sum_sq\", \"den_sum\",\n"
    "                 \"den_sum_sq\", \"cross_sum\", \"pre_sum\",\n"
    "                 \"pre_sum_sq\", \"pre_cross_sum\", \"weight\",\n"
    "                 \"control\"}], at least 2; the first is the control\n"
    "                unless one has \"control\": true            required\n"
    "  method       welch|z|msprt|gst|bayes   default z for binary, else welch\n"
    "  effect       absolute|relative                     default absolute\n"
    "  alpha        in (0, 1); msprt (0, 0.5]                 default 0.05\n"
    "  sided        two|greater|less                           default two\n"
    "  tuning       msprt: units per arm where it is tightest  default 5000\n"
    "  spending     gst: obf|pocock|power|hsd                  default obf\n"
    "  rho          gst: power-family rho (> 0) or HSD gamma\n"
    "  information  gst: increasing information fractions of the looks\n"
    "  prior        bayes: {\"mean\", \"sd\"} on the effect\n"
    "  cuped        true: adjust with the pre_* covariate (not for ratio)\n"
    "  correction   none|holm|bh across the comparisons       default none\n"
    "\n"
    "Example (conversions: n units, sum converted; sum_sq = sum for 0/1):\n"
    "  echo '{\"metric\": {\"kind\": \"binary\"}, \"method\": \"z\",\n"
    "         \"arms\": [{\"name\": \"control\", \"n\": 1000, \"sum\": 100, \"sum_sq\": 100},\n"
    "                  {\"name\": \"v2\", \"n\": 1000, \"sum\": 130, \"sum_sq\": 130}]}' |\n"
    "      arbiter analyze\n"
    "\n"
    "Answer: {\"arms\": [{\"name\", \"n\", \"mean\", \"variance\", \"ci\", ...}],\n"
    "  \"comparisons\": [{\"arm\", \"control\", \"effect\", \"se\", \"ci\",\n"
    "  \"p_value\", \"chance_to_win\", \"significant\", \"verdict\", ...}],\n"
    "  \"srm\": {\"p_value\", \"mismatch\", ...}} (codec/analyze.h lists every\n"
    "  field; values that do not exist are null).\n";

int
cmd_analyze(int argc, char **argv)
{
    char err[512] = "";
    char *buf = NULL;
    size_t len = 0, cap = 0;
    json_error_t jerr;
    json_t *req, *ans = NULL;
    char *text;
    ab_status rc;

    gsl_set_error_handler_off();   /* GSL's default handler aborts */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        fprintf(stderr, "arbiter analyze: unknown argument \"%s\"\n%s",
                argv[i], usage);
        return 2;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            if (cap >= MAX_INPUT) {
                fprintf(stderr, "arbiter analyze: request larger than "
                                "%zu bytes\n", (size_t)MAX_INPUT);
                free(buf);
                return 2;
            }
            cap = cap ? cap * 2 : 64 * KB;
            buf = ab_xrealloc(buf, cap);
        }
        got = fread(buf + len, 1, cap - len, stdin);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(stdin)) {
        fputs("arbiter analyze: cannot read stdin\n", stderr);
        free(buf);
        return 1;
    }
    /* INT_AS_REAL: a count beyond 2^63 is a number (and then a
     * degenerate input with a status), not a parse error */
    req = json_loadb(buf ? buf : "", len,
                     JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    free(buf);
    if (req == NULL) {
        fprintf(stderr, "arbiter analyze: malformed JSON at line %d column "
                        "%d: %s\n", jerr.line, jerr.column, jerr.text);
        return 2;
    }
    rc = api_analyze(req, &ans, err, sizeof(err));
    json_decref(req);
    if (rc == AB_EINVAL) {
        fprintf(stderr, "arbiter analyze: %s\n", err);
        return 2;
    }
    if (rc != AB_OK) {
        fprintf(stderr, "arbiter analyze: %s\n",
                err[0] ? err : ab_status_name(rc));
        return 1;
    }
    /* shortest digits that read back as the same double: exact, and a
     * typed 0.05 stays 0.05 */
    text = ab_json_text(ans, JSON_COMPACT);
    json_decref(ans);
    if (text == NULL) {
        fputs("arbiter analyze: cannot format the answer\n", stderr);
        return 1;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return fflush(stdout) == 0 ? 0 : 1;
}
