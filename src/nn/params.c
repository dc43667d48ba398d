/* src/nn/params.c - named parameter sets. */
#include "tensor/nn.h"

#include <stdio.h>
#include <string.h>

void tn_params_init(tn_params *ps)
{
    ps->items = NULL;
    ps->n = ps->cap = 0;
}

void tn_params_free(tn_params *ps)
{
    if (!ps)
        return;
    for (int i = 0; i < ps->n; i++)
        tn_tensor_free(ps->items[i].t);
    tn_free(ps->items);
    tn_params_init(ps);
}

tn_tensor *tn_params_get(const tn_params *ps, const char *name)
{
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, name) == 0)
            return ps->items[i].t;
    return NULL;
}

tn_tensor *tn_params_new(tn_params *ps, const char *prefix, const char *name, tn_dtype dt,
                         int ndim, const int64_t *shape)
{
    char full[TN_NAME_MAX];
    int len = prefix && *prefix ? snprintf(full, sizeof full, "%s.%s", prefix, name)
                                : snprintf(full, sizeof full, "%s", name);
    if (len < 0 || len >= TN_NAME_MAX) {
        tn_set_error(TN_ERR_ARG, "tn_params_new: name too long: %s.%s", prefix, name);
        return NULL;
    }
    if (tn_params_get(ps, full)) {
        tn_set_error(TN_ERR_ARG, "tn_params_new: duplicate parameter name %s", full);
        return NULL;
    }
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
