/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Push and pop batches on a queue (eq_batch.c).
 */
#ifndef _EQ_BATCH_H
#define _EQ_BATCH_H

#include "eq_queue.h"

long eq_batch_push(struct eq_queue *q, struct elasticq_push_batch *b,
		   bool nonblock, bool park);
long eq_batch_pop(struct eq_queue *q, struct elasticq_pop_batch *b,
		  bool nonblock, bool nowait);

#endif /* _EQ_BATCH_H */
