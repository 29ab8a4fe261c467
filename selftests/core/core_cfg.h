/* SPDX-License-Identifier: MIT */
/*
 * The configuration the userspace core tests and core_bench start from:
 * capacity bounds as given, growth 200 %, shrink 25 %, roomy byte limits,
 * no timeouts.
 */
#ifndef EQ_CORE_CFG_H
#define EQ_CORE_CFG_H

#include <string.h>

#include <linux/elasticq.h>

static inline struct elasticq_config eq_core_cfg(__u32 min, __u32 init,
						 __u32 max, __u32 variant)
{
	struct elasticq_config c;

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.min_capacity = min;
	c.initial_capacity = init;
	c.max_capacity = max;
	c.growth_pct = 200;
	c.shrink_pct = 25;
	c.max_msg_size = 4096;
	c.max_bytes = 1ULL << 30;
	c.push_timeout_ns = ELASTICQ_TIMEOUT_NONE;
	c.pop_timeout_ns = ELASTICQ_TIMEOUT_NONE;
	c.variant = variant;
	return c;
}

#endif /* EQ_CORE_CFG_H */
