/* tests/white_box.h - the library's private tensor record (src/core/
 * internal.h), for the tests that build what the public API cannot: a
 * strided "view" of a heap tensor that shares its data and gradient (a
 * strided parameter). Copy the whole record (tn_node), never only the
 * public tn_tensor: the library reads the rest. */
#ifndef TN_TESTS_WHITE_BOX_H
#define TN_TESTS_WHITE_BOX_H

#include "../src/core/internal.h"

#endif
