/** @file
 * tensor/export.h - TN_API, the mark on every public declaration.
 *
 * libtensor is compiled with hidden symbol visibility; only declarations
 * marked TN_API are exported from the shared library (libtensor.so), so
 * internal functions (tn__*) and tables stay private. For the static
 * library the mark changes nothing. */
#ifndef TENSOR_EXPORT_H
#define TENSOR_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define TN_API __attribute__((visibility("default")))
#else
#define TN_API
#endif

#endif
