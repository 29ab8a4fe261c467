// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * io_uring commands: PUSH_BATCH and POP_BATCH as IORING_OP_URING_CMD, with
 * the ioctls' argument structs (struct elasticq_uring_cmd points at one).
 *
 * A command runs its batch without sleeping.  Where the ioctl would sleep
 * (a pop on an empty queue, a push on a full one under the block policy)
 * the command parks instead: a struct eq_uring_wait sits on the queue's
 * readers (or writers) wait queue, whose wake-ups every push (or pop)
 * already makes, and its wake function queues task work that runs the
 * batch again in the submitting task (its memory holds the buffers).  So
 * no io-wq thread ever waits on the queue.
 *
 * A parked command ends when its batch can run, at its timeout
 * (-ETIMEDOUT), when the submitter closes the file (->flush, with the
 * submitter's files as owner), and when its ring or task goes away
 * (-ECANCELED).  On 6.12 io_uring says the last itself (a cancelable
 * command); on 6.1 it cannot, and a delayed work looks at the parked
 * commands while there are any (eq_uring_compat.h).
 *
 * Parked pops wait exclusively: each wake-up from a push (one per message)
 * fires at most one of them, and a pop that took a wake-up and ends passes
 * it on if messages are left (eq_uring_unlink()), so none is stranded.
 * read(2) sleepers and pollers still see every wake-up.  Parked pushes
 * wait non-exclusively: a pop makes one wake-up however much room it
 * frees, so one push at a time would strand the others.
 *
 * How many commands may park is bounded per queue (max_parked_per_queue,
 * then -EBUSY) and per user (max_parked_per_user, then -EDQUOT, unless
 * CAP_SYS_RESOURCE).  A parked push is counted as rejected at most once:
 * when it gives up for lack of room (its timeout, or it may not park); not
 * while it waits, and not when it is cancelled.
 *
 * The issue path may sleep on the queue's lock even with
 * IO_URING_F_NONBLOCK (held across a resize or a consumer's copy): handing
 * a command whose lock is busy back to io-wq (-EAGAIN) would let a later
 * command of the same ring overtake it, and pipelined pops or pushes would
 * then complete out of their queue order.  The lock is never held across
 * a wait for messages or room, and the consumer side's lock is taken
 * killable, so a task-work signal does not fail the command with -EINTR.
 *
 * States of a wait (@state): ARMED while the batch runs in a context that
 * will look again (the wait is on the wait queue already, so a wake-up in
 * between is not lost: it only moves ARMED to WOKEN and the batch runs
 * again); PARKED while nothing runs it; FIRED once whoever won the move
 * from PARKED queued the task work.  Only the task work and the issue
 * path run batches, one at a time per command.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/hrtimer.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "eq_batch.h"
#include "eq_dev.h"
#include "eq_uring_compat.h"

static unsigned int max_parked_per_queue = 256;
module_param(max_parked_per_queue, uint, 0644);
MODULE_PARM_DESC(max_parked_per_queue,
		 "io_uring commands that may wait on one queue; more fail with EBUSY (256)");

enum { EQ_URING_ARMED, EQ_URING_WOKEN, EQ_URING_PARKED, EQ_URING_FIRED };

/* What eq_uring_fire() did. */
enum { EQ_FIRE_NONE, EQ_FIRE_RUNNING, EQ_FIRE_PARKED };

/**
 * struct eq_uring_wait - a command waiting for its queue
 * @wait:	on @q's readers (pop, exclusive) or writers (push) while not
 *		done
 * @fnode:	in @ef->uring_waits once set up to park, under its lock
 * @wnode:	6.1: in eq_uring_watched once set up to park, under
 *		eq_uring_watch_lock
 * @timer:	the batch's timeout, if it has one, started at the first park
 * @cmd:	the command; its pdu points here
 * @q:		the queue (the file holds a reference, the command the file)
 * @ef:		the command's file's state
 * @owner:	the submitter's files: their close of the file cancels
 * @arg:	the user's argument struct
 * @user:	the submitter, charged for the command while it is parked
 * @timeout:	ns, or ELASTICQ_TIMEOUT_NONE
 * @state:	EQ_URING_*, see above
 * @reason:	0, or why the wait must end: -ETIMEDOUT, -ECANCELED, or
 *		-EBUSY, -EDQUOT, -ENOMEM if it may not park
 * @push:	a push batch (@pb), else a pop batch (@ob)
 * @nonblock:	the batch may not wait (O_NONBLOCK, BATCH_NONBLOCK)
 * @woken:	a wake-up moved @state; under the wait queue's lock
 * @parked:	set up to park (charged, on the lists, cancelable); only
 *		the context running the batch touches it
 * @pushed:	messages of @pb pushed so far (by earlier runs)
 * @pb:		push: the rest of the batch, @msgs and @count advanced
 * @ob:		pop: the batch
 */
struct eq_uring_wait {
	struct wait_queue_entry wait;
	struct list_head fnode;
	struct list_head wnode;
	struct hrtimer timer;
	struct io_uring_cmd *cmd;
	struct eq_queue *q;
	struct eq_file *ef;
	fl_owner_t owner;
	void __user *arg;
	struct eq_user *user;
	u64 timeout;
	atomic_t state;
	int reason;
	bool push;
	bool nonblock;
	bool woken;
	bool parked;
	u32 pushed;
	union {
		struct elasticq_push_batch pb;
		struct elasticq_pop_batch ob;
	};
};

/* 6.1: every parked command, for the watch; unused where cancelable. */
static DEFINE_SPINLOCK(eq_uring_watch_lock);
static LIST_HEAD(eq_uring_watched);	/* under eq_uring_watch_lock */

/* 6.1: how often to look for commands whose ring or task went away. */
#define EQ_URING_WATCH_PERIOD	(HZ / 20)
static void eq_uring_watch(struct work_struct *work);
static DECLARE_DELAYED_WORK(eq_uring_watch_work, eq_uring_watch);

/* Charge a command that is about to park to its queue and its user. */
static int eq_uring_charge(struct eq_uring_wait *w)
{
	int ret;

	if (atomic_inc_return(&w->q->uring_parked) >
	    READ_ONCE(max_parked_per_queue)) {
		atomic_dec(&w->q->uring_parked);
		return -EBUSY;
	}
	w->user = eq_user_get(current_uid());
	ret = w->user ? eq_user_add_parked(w->user) : -ENOMEM;
	if (ret) {
		if (w->user)
			eq_user_put(w->user);
		w->user = NULL;
		atomic_dec(&w->q->uring_parked);
	}
	return ret;
}

static void eq_uring_uncharge(struct eq_uring_wait *w)
{
	eq_user_del_parked(w->user);
	eq_user_put(w->user);
	w->user = NULL;
	atomic_dec(&w->q->uring_parked);
}

static struct eq_uring_wait *eq_uring_wait_of(struct io_uring_cmd *cmd)
{
	return *(struct eq_uring_wait **)cmd->pdu;
}

static void eq_uring_tw(struct io_uring_cmd *cmd, unsigned int issue_flags);

/*
 * Something changed for the wait: a running batch runs again (ARMED ->
 * WOKEN), a parked one is fired (PARKED -> FIRED).  Return: EQ_FIRE_*;
 * on EQ_FIRE_PARKED the caller must queue its task work.
 */
static int eq_uring_fire(struct eq_uring_wait *w)
{
	for (;;) {
		switch (atomic_read(&w->state)) {
		case EQ_URING_ARMED:
			if (atomic_cmpxchg(&w->state, EQ_URING_ARMED,
					   EQ_URING_WOKEN) == EQ_URING_ARMED)
				return EQ_FIRE_RUNNING;
			break;
		case EQ_URING_PARKED:
			if (atomic_cmpxchg(&w->state, EQ_URING_PARKED,
					   EQ_URING_FIRED) == EQ_URING_PARKED)
				return EQ_FIRE_PARKED;
			break;
		default:
			return EQ_FIRE_NONE;
		}
	}
}

/* The wait must end for @reason; the first reason given wins. */
static void eq_uring_end(struct eq_uring_wait *w, int reason)
{
	cmpxchg(&w->reason, 0, reason);
	if (eq_uring_fire(w) == EQ_FIRE_PARKED)
		io_uring_cmd_complete_in_task(w->cmd, eq_uring_tw);
}

/*
 * Wake function, under the wait queue's lock.  Return: 1 if the wake-up
 * went to this command (an exclusive pop: the waker then stops), else 0.
 */
static int eq_uring_wake(struct wait_queue_entry *wait, unsigned int mode,
			 int sync, void *key)
{
	struct eq_uring_wait *w = container_of(wait, struct eq_uring_wait,
					       wait);
	__poll_t want = w->push ? EPOLLOUT : EPOLLIN;
	int fired;

	if (key && !(key_to_poll(key) & want))
		return 0;
	fired = eq_uring_fire(w);
	if (fired == EQ_FIRE_NONE)
		return 0;
	w->woken = true;
	if (fired == EQ_FIRE_PARKED) {
		/* Off the wait queue, as autoremove does. */
		list_del_init(&wait->entry);
		io_uring_cmd_complete_in_task(w->cmd, eq_uring_tw);
	}
	return 1;
}

static enum hrtimer_restart eq_uring_timeout(struct hrtimer *timer)
{
	eq_uring_end(container_of(timer, struct eq_uring_wait, timer),
		     -ETIMEDOUT);
	return HRTIMER_NORESTART;
}

static wait_queue_head_t *eq_uring_wq(struct eq_uring_wait *w)
{
	return w->push ? &w->q->writers : &w->q->readers;
}

/* On the wait queue (again), ARMED: wake-ups from now on are seen. */
static void eq_uring_arm(struct eq_uring_wait *w)
{
	wait_queue_head_t *wq = eq_uring_wq(w);
	unsigned long flags;

	atomic_set(&w->state, EQ_URING_ARMED);
	spin_lock_irqsave(&wq->lock, flags);
	if (list_empty(&w->wait.entry))
		__add_wait_queue_entry_tail(wq, &w->wait);
	spin_unlock_irqrestore(&wq->lock, flags);
	/*
	 * The entry is on the wait queue before the batch looks at the queue.
	 * Pairs with the smp_mb() in wq_has_sleeper() (eq_lf_wake()): a
	 * lock-free push or pop either sees the entry and wakes it, or its
	 * message (or room) is seen by the run that follows.
	 */
	smp_mb();
}

/* Off the wait queue.  Return: whether a wake-up went to the command. */
static bool eq_uring_disarm(struct eq_uring_wait *w)
{
	wait_queue_head_t *wq = eq_uring_wq(w);
	unsigned long flags;
	bool woken;

	spin_lock_irqsave(&wq->lock, flags);
	list_del_init(&w->wait.entry);
	woken = w->woken;
	spin_unlock_irqrestore(&wq->lock, flags);
	return woken;
}

/*
 * Run the batch once, without sleeping for messages or room.  @last: the
 * wait is ending (timeout, or it may not park), so a push that finds no
 * room counts as rejected.
 * Return: the command's result (output fields written); or -EAGAIN with
 * *@wait set if it must wait (the wait's state tells whether something
 * changed since).
 */
static long eq_uring_run(struct eq_uring_wait *w, bool last, bool *wait)
{
	struct elasticq_push_batch __user *upb = w->arg;
	struct elasticq_pop_batch __user *uob = w->arg;
	u32 policy;
	long ret;

	*wait = false;
	if (!w->push) {
		ret = eq_batch_pop(w->q, &w->ob, true, false);
		if (ret > 0 && put_user(w->ob.bytes, &uob->bytes))
			return ret;	/* the frames are there, as the ioctl */
		*wait = ret == -EAGAIN && !w->nonblock;
		return ret;
	}
	if (w->pb.count) {
		/* Not parking (or last): a refusal for room counts. */
		ret = eq_batch_push(w->q, &w->pb, w->nonblock || last,
				    !w->nonblock && !last);
		if (ret > 0) {
			w->pushed += ret;
			w->pb.msgs += ret * sizeof(struct elasticq_msg_vec);
			w->pb.count -= ret;
		}
	}
	policy = READ_ONCE(eq_queue_cfg(w->q)->full_policy);
	if (w->pb.error == -EAGAIN && !w->nonblock &&
	    policy != ELASTICQ_FULL_REJECT) {
		*wait = true;
		return -EAGAIN;
	}
	if (put_user(w->pb.error, &upb->error) && !w->pushed)
		return -EFAULT;
	return w->pushed ? w->pushed : w->pb.error;
}

/* The command's result once it cannot wait any longer, for @reason. */
static long eq_uring_gave_up(struct eq_uring_wait *w, int reason)
{
	struct elasticq_push_batch __user *upb = w->arg;

	if (!w->push)
		return reason;
	w->pb.error = reason;
	/* From another task's context the user's struct is out of reach. */
	if (current == eq_uring_task(w->cmd))
		(void)put_user(reason, &upb->error);
	return w->pushed ? w->pushed : reason;
}

/*
 * Before the command first parks (in the issue path): charge it, put it
 * where close and (6.1) the watch find it, let io_uring cancel it, start
 * its timeout.  Return: 0, or why it may not park.
 */
static int eq_uring_setup_park(struct eq_uring_wait *w,
			       unsigned int issue_flags)
{
	int ret;

	ret = eq_uring_charge(w);
	if (ret)
		return ret;
	spin_lock(&w->ef->uring_lock);
	list_add_tail(&w->fnode, &w->ef->uring_waits);
	spin_unlock(&w->ef->uring_lock);
	if (!EQ_URING_CANCELABLE) {
		spin_lock(&eq_uring_watch_lock);
		list_add_tail(&w->wnode, &eq_uring_watched);
		spin_unlock(&eq_uring_watch_lock);
		schedule_delayed_work(&eq_uring_watch_work,
				      EQ_URING_WATCH_PERIOD);
	}
	/* From here the command completes through io_uring_cmd_done(). */
	eq_uring_mark_cancelable(w->cmd, issue_flags);
	if (w->timeout != ELASTICQ_TIMEOUT_NONE)
		hrtimer_start(&w->timer,
			      ns_to_ktime(min_t(u64, w->timeout, KTIME_MAX)),
			      HRTIMER_MODE_REL);
	w->parked = true;
	return 0;
}

/*
 * Off every list of ours, the wait queue and the timer: nothing fires the
 * wait any more.  A pop that took a wake-up passes it on if messages are
 * left (it took fewer, or none, or it ends without running).
 */
static void eq_uring_unlink(struct eq_uring_wait *w)
{
	if (w->parked) {
		spin_lock(&w->ef->uring_lock);
		list_del(&w->fnode);
		spin_unlock(&w->ef->uring_lock);
		if (!EQ_URING_CANCELABLE) {
			spin_lock(&eq_uring_watch_lock);
			list_del(&w->wnode);
			spin_unlock(&eq_uring_watch_lock);
		}
		hrtimer_cancel(&w->timer);
	}
	if (eq_uring_disarm(w) && !w->push &&
	    (eq_queue_poll(w->q, NULL, NULL) & EPOLLIN))
		wake_up_interruptible_poll(&w->q->readers,
					   EPOLLIN | EPOLLRDNORM);
}

static void eq_uring_done(struct eq_uring_wait *w, long ret,
			  unsigned int issue_flags)
{
	eq_uring_unlink(w);
	io_uring_cmd_done(w->cmd, ret, 0, issue_flags);
	/*
	 * Only now: until io_uring_cmd_done() took the command off io_uring's
	 * cancelable list, a cancel (ring exit, exec, exit) may look at the
	 * wait through the pdu.
	 */
	if (w->parked)
		eq_uring_uncharge(w);
	kfree(w);
}

/*
 * Run the batch until it completes or must wait; the wait is ARMED on
 * entry.  Return: the result, -EIOCBQUEUED once the command is PARKED
 * (after which it belongs to whoever fires it: do not touch it).
 */
static long eq_uring_try(struct eq_uring_wait *w, unsigned int issue_flags)
{
	bool wait;
	long ret;
	int reason;

	for (;;) {
		reason = READ_ONCE(w->reason);
		ret = eq_uring_run(w, reason && reason != -ECANCELED, &wait);
		if (!wait)
			return ret;
		if (reason)
			return eq_uring_gave_up(w, reason);
		if (!w->parked) {
			reason = eq_uring_setup_park(w, issue_flags);
			if (reason) {
				/* One last run, then give up. */
				cmpxchg(&w->reason, 0, reason);
				continue;
			}
		}
		if (atomic_cmpxchg(&w->state, EQ_URING_ARMED,
				   EQ_URING_PARKED) == EQ_URING_ARMED)
			return -EIOCBQUEUED;
		/* Woken (or given a reason) while running: look again. */
		atomic_set(&w->state, EQ_URING_ARMED);
	}
}

/* Task work: a wake-up, the timeout or a cancellation fired the wait. */
static void eq_uring_tw(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	struct eq_uring_wait *w = eq_uring_wait_of(cmd);
	long ret;

	/* Exiting, or run by a fallback worker: the buffers are gone. */
	if (current != eq_uring_task(cmd) || (current->flags & PF_EXITING) ||
	    READ_ONCE(w->reason) == -ECANCELED) {
		eq_uring_done(w, eq_uring_gave_up(w, -ECANCELED), issue_flags);
		return;
	}
	eq_uring_arm(w);
	ret = eq_uring_try(w, issue_flags);
	if (ret != -EIOCBQUEUED)
		eq_uring_done(w, ret, issue_flags);
}

/*
 * Run the new command's batch; if it must wait, park it.  Everything a
 * parked command needs is set up before it may park: from then on a
 * producer may fire it, and its task work complete and free it, at once.
 * Return: -EIOCBQUEUED.
 */
static int eq_uring_issue(struct io_uring_cmd *cmd, struct eq_uring_wait *w,
			  unsigned int issue_flags)
{
	u64 timeout = w->push ? w->pb.timeout_ns : w->ob.timeout_ns;
	u32 flags = w->push ? w->pb.flags : w->ob.flags;
	long ret;

	if (!(flags & ELASTICQ_BATCH_TIMEOUT)) {
		const struct elasticq_config *cfg = eq_queue_cfg(w->q);

		timeout = w->push ? READ_ONCE(cfg->push_timeout_ns) :
				    READ_ONCE(cfg->pop_timeout_ns);
	}
	w->timeout = timeout;
	if (!timeout)
		w->reason = -ETIMEDOUT;
	*(struct eq_uring_wait **)cmd->pdu = w;
	init_waitqueue_func_entry(&w->wait, eq_uring_wake);
	if (!w->push)
		w->wait.flags |= WQ_FLAG_EXCLUSIVE;
	INIT_LIST_HEAD(&w->wait.entry);
	hrtimer_init(&w->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	w->timer.function = eq_uring_timeout;
	eq_uring_arm(w);
	ret = eq_uring_try(w, issue_flags);
	if (ret == -EIOCBQUEUED)
		return ret;
	eq_uring_done(w, ret, issue_flags);
	return -EIOCBQUEUED;
}

/* 6.1: end the waits io_uring would wait for forever. */
static void eq_uring_watch(struct work_struct *work)
{
	struct eq_uring_wait *w;
	bool more;

	spin_lock(&eq_uring_watch_lock);
	list_for_each_entry(w, &eq_uring_watched, wnode)
		if (eq_uring_abandoned(w->cmd))
			eq_uring_end(w, -ECANCELED);
	more = !list_empty(&eq_uring_watched);
	spin_unlock(&eq_uring_watch_lock);
	if (more)
		schedule_delayed_work(&eq_uring_watch_work,
				      EQ_URING_WATCH_PERIOD);
}

/**
 * eq_uring_flush() - ->flush of /dev/elasticq: end the commands that
 * @owner (the files closing the file) submitted on @file
 * @file:  the file being closed
 * @owner: the closer's files
 *
 * close(2) does not end a command otherwise: its request holds the file.
 *
 * Return: 0.
 */
int eq_uring_flush(struct file *file, fl_owner_t owner)
{
	struct eq_file *ef = file->private_data;
	struct eq_uring_wait *w;

	/* Most files park nothing: their close costs one load. */
	if (list_empty(&ef->uring_waits))
		return 0;
	spin_lock(&ef->uring_lock);
	list_for_each_entry(w, &ef->uring_waits, fnode)
		if (w->owner == owner)
			eq_uring_end(w, -ECANCELED);
	spin_unlock(&ef->uring_lock);
	return 0;
}

/**
 * eq_uring_cmd() - ->uring_cmd of /dev/elasticq
 * @cmd:         the command: cmd_op an ELASTICQ_IOC_* batch number, the SQE's
 *               command area a struct elasticq_uring_cmd
 * @issue_flags: IO_URING_F_*
 *
 * Return: the batch's result as the ioctl's, -EIOCBQUEUED if it waits or
 * completed through io_uring_cmd_done(), or -ENOTTY for another command
 * number.
 */
int eq_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags)
{
	const struct elasticq_uring_cmd *area;
	struct file *file = cmd->file;
	struct eq_uring_wait *w;
	u64 arg, reserved;
	struct eq_queue *q;
	bool push;
	int ret;

	if (eq_uring_is_cancel(issue_flags)) {
		eq_uring_end(eq_uring_wait_of(cmd), -ECANCELED);
		return 0;
	}
	switch (EQ_IOC_SIZELESS(cmd->cmd_op)) {
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_PUSH_BATCH):
		push = true;
		break;
	case EQ_IOC_SIZELESS(ELASTICQ_IOC_POP_BATCH):
		push = false;
		break;
	default:
		return -ENOTTY;
	}
	/* The SQE is shared with userspace: read each field once. */
	area = eq_uring_cmd_area(cmd);
	arg = READ_ONCE(area->arg);
	reserved = READ_ONCE(area->reserved);
	if (reserved)
		return -EINVAL;
	w = kzalloc(sizeof(*w), GFP_KERNEL_ACCOUNT);
	if (!w)
		return -ENOMEM;
	w->cmd = cmd;
	w->ef = file->private_data;
	w->owner = current->files;
	w->arg = u64_to_user_ptr(arg);
	w->push = push;
	if (push)
		ret = eq_push_batch_args(file, cmd->cmd_op, w->arg, &w->pb);
	else
		ret = eq_pop_batch_args(file, cmd->cmd_op, w->arg, &w->ob);
	if (ret || (push && !w->pb.count))
		goto out;
	q = eq_file_claim(file->private_data,
			  push ? EQ_ROLE_PRODUCER : EQ_ROLE_CONSUMER);
	if (IS_ERR(q)) {
		ret = PTR_ERR(q);
		goto out;
	}
	w->q = q;
	w->nonblock = eq_batch_nonblock(file, push ? w->pb.flags :
					w->ob.flags);
	return eq_uring_issue(cmd, w, issue_flags);
out:
	kfree(w);
	return ret;
}

/**
 * eq_uring_exit() - at module unload: no command waits (each holds its
 * file, which holds the module); stop the watch.
 */
void eq_uring_exit(void)
{
	cancel_delayed_work_sync(&eq_uring_watch_work);
}
