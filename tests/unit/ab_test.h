/* ab_test.h -- the assertions every C unit test shares, for doubles
 * (cmocka 1.1.5 has none fine enough). Include after <cmocka.h>.
 *
 *   assert_close(x, want, rtol)   |x - want| <= rtol |want| (relative;
 *                                 golden values from an oracle)
 *   assert_near(x, want, tol)     |x - want| <= tol (absolute; values
 *                                 near zero, probabilities, boundaries)
 *
 * Both fail (NaN included) with the expression, its value and the target.
 */
#ifndef TESTS_UNIT_AB_TEST_H
#define TESTS_UNIT_AB_TEST_H

#include <math.h>

#define assert_close(x, want, rtol)                                            \
    do {                                                                       \
        double x_ = (x), w_ = (want);                                          \
        if (!(fabs(x_ - w_) <= (rtol)*fabs(w_) + 1e-300))                      \
            fail_msg("%s = %.17g, want %.17g (rtol %g)", #x, x_, w_,           \
                     (double)(rtol));                                          \
    } while (0)

#define assert_near(x, want, tol)                                              \
    do {                                                                       \
        double x_ = (x), w_ = (want), t_ = (tol);                              \
        if (!(fabs(x_ - w_) <= t_))                                            \
            fail_msg("%s = %.17g, want %.17g +- %.3g", #x, x_, w_, t_);        \
    } while (0)

#endif /* TESTS_UNIT_AB_TEST_H */
