/* SPDX-License-Identifier: MIT */
#ifndef EQ_SHIM_LINUX_TYPES_H
#define EQ_SHIM_LINUX_TYPES_H
#include_next <linux/types.h>	/* __u32, __u64 for the uapi header */
#include "../eq_shim.h"
#endif
