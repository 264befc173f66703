/* clock.h -- wall-clock time for the process layers. Pure code takes time
 * as an argument (int64_t now_ms); only the edges read the clock, here. */
#ifndef LIB_CLOCK_H
#define LIB_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t ab_now_ms(void);

#endif /* LIB_CLOCK_H */
