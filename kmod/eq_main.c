// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * elasticq: an elastic message queue on /dev/elasticq.
 *
 * Module load creates the default queue from the parameters below (SPEC
 * section 7 defaults; named queues created without a config get the same),
 * registers the device and /proc/elasticq; unload frees everything.  The
 * limits on named queues and memory are parameters of eq_registry.c.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/proc_fs.h>

#include "eq_dev.h"
#include "eq_registry.h"

static uint initial_capacity = 1024;
module_param(initial_capacity, uint, 0444);
MODULE_PARM_DESC(initial_capacity, "Default queue: slots at creation (1024)");

static uint min_capacity = 1024;
module_param(min_capacity, uint, 0444);
MODULE_PARM_DESC(min_capacity, "Default queue: fewest slots (1024)");

static uint max_capacity = 65536;
module_param(max_capacity, uint, 0444);
MODULE_PARM_DESC(max_capacity, "Default queue: most slots (65536)");

static uint growth_pct = 200;
module_param(growth_pct, uint, 0444);
MODULE_PARM_DESC(growth_pct, "Default queue: growth factor in percent, > 100 (200)");

static uint shrink_pct = 25;
module_param(shrink_pct, uint, 0444);
MODULE_PARM_DESC(shrink_pct, "Default queue: shrink when at most this percent full (25)");

static uint max_msg_size = 8192;
module_param(max_msg_size, uint, 0444);
MODULE_PARM_DESC(max_msg_size, "Default queue: largest message in bytes (8192)");

static unsigned long long max_bytes = 64ULL << 20;
module_param(max_bytes, ullong, 0444);
MODULE_PARM_DESC(max_bytes, "Default queue: most payload bytes queued (64 MiB)");

static uint full_policy = ELASTICQ_FULL_BLOCK;
module_param(full_policy, uint, 0444);
MODULE_PARM_DESC(full_policy, "Default queue: 0 block, 1 reject, 2 drop oldest (0)");

static uint variant = ELASTICQ_VARIANT_LOCKED;
module_param(variant, uint, 0444);
MODULE_PARM_DESC(variant, "Default queue: 0 lock-based, 1 lock-free MPSC (0)");

static int __init elasticq_init(void)
{
	struct elasticq_config cfg = {
		.size			= sizeof(cfg),
		.initial_capacity	= initial_capacity,
		.min_capacity		= min_capacity,
		.max_capacity		= max_capacity,
		.growth_pct		= growth_pct,
		.shrink_pct		= shrink_pct,
		.max_msg_size		= max_msg_size,
		.max_bytes		= max_bytes,
		.push_timeout_ns	= ELASTICQ_TIMEOUT_NONE,
		.pop_timeout_ns		= ELASTICQ_TIMEOUT_NONE,
		.variant		= variant,
		.full_policy		= full_policy,
	};
	int ret;

	ret = eq_registry_init(&cfg);
	if (ret) {
		pr_err("elasticq: cannot create the default queue (%d)\n", ret);
		/* Over max_total_bytes: the parameters contradict each other. */
		return ret == -ENOBUFS ? -EINVAL : ret;
	}
	/* A table for `cat`, like /proc/sysvipc/msg. */
	if (!proc_create_single("elasticq", 0444, NULL, eq_registry_show)) {
		ret = -ENOMEM;
		goto err_registry;
	}
	ret = eq_dev_register();
	if (ret)
		goto err_proc;
	return 0;

err_proc:
	remove_proc_entry("elasticq", NULL);
err_registry:
	eq_registry_exit();
	return ret;
}

static void __exit elasticq_exit(void)
{
	eq_dev_unregister();
	eq_uring_exit();
	remove_proc_entry("elasticq", NULL);
	eq_registry_exit();
}

module_init(elasticq_init);
module_exit(elasticq_exit);

MODULE_AUTHOR("The elasticq developers");
MODULE_DESCRIPTION("Elastic in-kernel message queue on /dev/elasticq");
MODULE_LICENSE("Dual MIT/GPL");
