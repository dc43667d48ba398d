/* src/nn/params.c - named parameter sets. */
#include "tensor/nn.h"

#include <stdio.h>
#include <string.h>

void tn_params_init(tn_params *ps)
{
    ps->items = NULL;
    ps->n = ps->cap = 0;
    ps->ties = NULL;
    ps->nties = ps->tcap = 0;
}

void tn_params_free(tn_params *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++)
        tn_tensor_free(ps->items[i].t);
    tn_free(ps->items);
    tn_free(ps->ties);
    tn_params_init(ps);
}

tn_tensor *tn_params_get(const tn_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, name) == 0)
            return ps->items[i].t;
    for (int i = 0; i < ps->nties; i++)
        if (strcmp(ps->ties[i].name, name) == 0)
            return ps->ties[i].t;
    return NULL;
}

/* prefix + "." + name (or name alone) into full, a name not yet used in
 * ps; its length, or -1 with the error set. */
static int new_name(const char *fn, const tn_params *ps, char full[TN_NAME_MAX], const char *prefix,
                    const char *name)
{
    int len = prefix && *prefix ? snprintf(full, TN_NAME_MAX, "%s.%s", prefix, name)
                                : snprintf(full, TN_NAME_MAX, "%s", name);
    if (len < 0 || len >= TN_NAME_MAX) {
        tn_set_error(TN_ERR_ARG, "%s: name too long: %s.%s", fn, prefix ? prefix : "", name);
        return -1;
    }
    if (tn_params_get(ps, full)) {
        tn_set_error(TN_ERR_ARG, "%s: duplicate parameter name %s", fn, full);
        return -1;
    }
    return len;
}

tn_tensor *tn_params_tie(tn_params *ps, const char *prefix, const char *name, const char *target)
{
    const char *fn = "tn_params_tie";
    char full[TN_NAME_MAX];
    if (!ps || !name || !target) {
        tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
        return NULL;
    }
    tn_tensor *t = NULL;
    for (int i = 0; i < ps->n && !t; i++) /* a tie of a tie names the same tensor */
        if (strcmp(ps->items[i].name, target) == 0)
            t = ps->items[i].t;
    if (!t) {
        tn_set_error(TN_ERR_ARG, "%s: no parameter named %s to tie to", fn, target);
        return NULL;
    }
    if (new_name(fn, ps, full, prefix, name) < 0)
        return NULL;
    if (ps->nties == ps->tcap) {
        int cap = ps->tcap ? 2 * ps->tcap : 4;
        tn_param_tie *ties = tn_alloc((size_t)cap * sizeof *ties);
        if (!ties)
            return NULL;
        if (ps->nties)
            memcpy(ties, ps->ties, (size_t)ps->nties * sizeof *ties);
        tn_free(ps->ties);
        ps->ties = ties;
        ps->tcap = cap;
    }
    tn_param_tie *k = &ps->ties[ps->nties++];
    snprintf(k->name, sizeof k->name, "%s", full);
    k->t = t;
    return t;
}

tn_tensor *tn_params_new(tn_params *ps, const char *prefix, const char *name, tn_dtype dt, int ndim,
                         const int64_t *shape)
{
    char full[TN_NAME_MAX];
    int len = new_name("tn_params_new", ps, full, prefix, name);
    if (len < 0)
        return NULL;
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        tn_param *items = tn_alloc((size_t)cap * sizeof *items);
        if (!items)
            return NULL;
        if (ps->n)
            memcpy(items, ps->items, (size_t)ps->n * sizeof *items);
        tn_free(ps->items);
        ps->items = items;
        ps->cap = cap;
        for (int i = 0; i < ps->n; i++) /* names moved with the items */
            ps->items[i].t->name = ps->items[i].name;
    }
    tn_tensor *t = tn_tensor_new(dt, ndim, shape);
    if (!t)
        return NULL;
    if (tn_tensor_set_requires_grad(t, true) != TN_OK) {
        tn_tensor_free(t);
        return NULL;
    }
    tn_param *p = &ps->items[ps->n++];
    memcpy(p->name, full, (size_t)len + 1);
    p->t = t;
    t->name = p->name;
    return t;
}

void tn_params_zero_grad(tn_params *ps)
{
    for (int i = 0; i < ps->n; i++)
        tn_tensor_zero_grad(ps->items[i].t);
}

int64_t tn_params_numel(const tn_params *ps)
{
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++)
        n += tn_numel(ps->items[i].t);
    return n;
}
