/* tests/test_fastmath.c - the vectorisable float exp/tanh/sigmoid of
 * src/ops/fastmath.h against double-precision libm, on a dense sweep.
 * Bounds: exp within 2 float ulp (relative 2 * 2^-23 = 2.4e-7) on
 * [-87, 88]; tanh and sigmoid within 4e-7 absolute everywhere, and 2 ulp
 * relative where the result's magnitude is above 0.5 (gate values). */
#include "check.h"

#include "../src/ops/fastmath.h"

#include <float.h>

int main(void)
{
    double e_rel = 0, t_abs = 0, s_abs = 0, t_rel = 0, s_rel = 0;
    for (double x = -90; x <= 90; x += 0.00037) {
        float xf = (float)x;
        double xd = xf;
        if (xd >= -87 && xd <= 88) {
            double ref = exp(xd);
            e_rel = fmax(e_rel, fabs(tn__expf(xf) - ref) / ref);
        }
        double tr = tanh(xd), sr = 1 / (1 + exp(-xd));
        double te = fabs(tn__tanhf(xf) - tr), se = fabs(tn__sigmoidf(xf) - sr);
        t_abs = fmax(t_abs, te);
        s_abs = fmax(s_abs, se);
        if (fabs(tr) > 0.5)
            t_rel = fmax(t_rel, te / fabs(tr));
        if (sr > 0.5)
            s_rel = fmax(s_rel, se / sr);
    }
    /* tiny arguments: tanh(x) ~ x must keep its relative accuracy */
    for (float x = 1e-30f; x < 0.3f; x *= 1.37f)
        t_rel = fmax(t_rel, fabs(tn__tanhf(x) - tanh((double)x)) / tanh((double)x));
    printf("exp max rel %.3g, tanh max abs %.3g rel %.3g, sigmoid max abs %.3g rel %.3g\n", e_rel,
           t_abs, t_rel, s_abs, s_rel);
    CHECK(e_rel <= 2 * FLT_EPSILON);
    CHECK(t_abs <= 4e-7 && t_rel <= 2 * FLT_EPSILON);
    CHECK(s_abs <= 4e-7 && s_rel <= 2 * FLT_EPSILON);
    /* limits: no inf or NaN from huge inputs */
    CHECK(tn__tanhf(1e30f) == 1.0f && tn__tanhf(-1e30f) == -1.0f);
    CHECK(tn__sigmoidf(1e30f) == 1.0f && tn__sigmoidf(-1e30f) >= 0.0f);
    CHECK(isfinite(tn__expf(1e30f)) && tn__expf(-1e30f) >= 0.0f);
    return check_report("test_fastmath");
}
