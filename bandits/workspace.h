/* workspace.h -- the layout of struct bandit_workspace, shared by the
 * bandits/ sources only (callers see it as opaque: bandits/bandit.h). */
#ifndef BANDITS_WORKSPACE_H
#define BANDITS_WORKSPACE_H

#include <stddef.h>

#include <gsl/gsl_integration.h>

#include "bandits/bandit.h"
#include "bandits/thompson.h"

#define BANDIT_GL_NODES 8 /* Gauss-Legendre nodes per piece */
#define BANDIT_GH_NODES 64 /* Gauss-Hermite nodes */
#define BANDIT_MAX_BREAKS(k) (12 * (k) + 160)

struct bandit_workspace {
    size_t max_arms;
    struct bandit_arm *arms;         /* mirrored statistics */
    struct bandit_posterior *post;   /* per-arm posteriors */
    unsigned char *mask_policy;      /* arms the policy allocates among */
    unsigned char *mask_active;      /* active arms */
    unsigned char *fixed;            /* arms held at the floor */
    double *w;                       /* weights being built */
    double *p;                       /* p_best being built */
    double *q;                       /* policy weights / scratch */
    double *counts;                  /* Monte Carlo counts */
    double *breaks;                  /* quadrature breakpoints */
    gsl_integration_fixed_workspace *gl; /* Legendre on [-1, 1] */
    gsl_integration_fixed_workspace *gh; /* Hermite, weight exp(-x^2) */
};

#endif /* BANDITS_WORKSPACE_H */
