/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The queues of the module: the default queue, the named ones, their
 * owners and permissions, and the limits on them (eq_registry.c).
 */
#ifndef _EQ_REGISTRY_H
#define _EQ_REGISTRY_H

#include <linux/seq_file.h>

#include "eq_queue.h"

int eq_registry_init(const struct elasticq_config *defaults);
void eq_registry_exit(void);

struct eq_queue *eq_registry_default(void);
struct eq_queue *eq_registry_attach(const struct elasticq_attach *a,
				    const struct elasticq_config *cfg,
				    int want);
int eq_registry_destroy(const struct elasticq_destroy *d);
int eq_registry_check_name(const char *name);
bool eq_registry_may_configure(struct eq_queue *q);
void eq_registry_get_owner(struct eq_queue *q, struct elasticq_owner *o);
int eq_registry_set_owner(struct eq_queue *q, const struct elasticq_owner *o);
int eq_registry_set_config(struct eq_queue *q,
			   const struct elasticq_config *cfg);
void eq_registry_defaults(struct elasticq_config *cfg);
int eq_registry_show(struct seq_file *m, void *v);

int eq_queue_access(struct eq_queue *q);
int eq_queue_want(fmode_t fmode);
void eq_queue_get(struct eq_queue *q);
void eq_queue_put(struct eq_queue *q);

#endif /* _EQ_REGISTRY_H */
