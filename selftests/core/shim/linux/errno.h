/* SPDX-License-Identifier: MIT */
#ifndef EQ_SHIM_LINUX_ERRNO_H
#define EQ_SHIM_LINUX_ERRNO_H
#include_next <linux/errno.h>	/* glibc's <errno.h> comes here too */
#include "../eq_shim.h"
#endif
