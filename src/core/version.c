/* src/core/version.c - tn_version (contract in tensor/core.h). */
#include "tensor/core.h"

const char *tn_version(void) { return TN_VERSION_STRING; }
