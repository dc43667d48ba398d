/* src/ops/table.c - the op table: name and backward of every op, from the
 * op list (tensor/op_list.h). Adding an op: one line in that list, the
 * builder and kernels (and tn__bw_<name>) in its family file, and a
 * gradient-check case in tests/. */
#include "ops_internal.h"

/* One entry per line of TN_OP_LIST, at its id; views and the leaf have a
 * NULL backward. The size is the list's length, which the declaration in
 * ops_internal.h (TN_OP_COUNT entries) and the assertion below hold to the
 * enum. */
#define TN__OP_ENTRY(id, name, backward) [id] = {name, backward},
const tn_op_def tn__op_table[] = {TN_OP_LIST(TN__OP_ENTRY, TN__OP_ENTRY)};
#undef TN__OP_ENTRY

_Static_assert(sizeof tn__op_table / sizeof tn__op_table[0] == TN_OP_COUNT,
               "the op table has one entry per op of enum tn_op");
/* Op ids are ABI (tn_tensor.op, tn_op_name): new ops go at the end of
 * TN_OP_LIST, so the ids of the existing ones stay as they are. */
_Static_assert(TN_OP_RECURRENT == 38,
               "an op was inserted or removed in TN_OP_LIST: append instead");

const char *tn_op_name(int op)
{
    if (op < 0 || op >= TN_OP_COUNT || !tn__op_table[op].name)
        return "?";
    return tn__op_table[op].name;
}
