/* conninfo.c -- see conninfo.h. */
#include "sql/conninfo.h"

#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

int
db_conninfo_describe(const char *conninfo, char *out, size_t len)
{
    static const char *const keep[] = {"host", "hostaddr", "port", "dbname",
                                       "user"};
    if (len == 0)
        return -1;
    out[0] = '\0';
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &err);
    if (opts == NULL) {
        PQfreemem(err); /* the message may quote the string: not logged */
        snprintf(out, len, "(unparsable connection string)");
        return -1;
    }
    size_t pos = 0;
    for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (strcmp(o->keyword, keep[k]) != 0 || o->val == NULL ||
                o->val[0] == '\0')
                continue;
            int n = snprintf(out + pos, len - pos, "%s%s=%s", pos ? " " : "",
                             o->keyword, o->val);
            if (n < 0 || (size_t)n >= len - pos) {
                out[pos] = '\0';
                break;
            }
            pos += (size_t)n;
        }
    PQconninfoFree(opts);
    return 0;
}
