------------------------------ MODULE UringCmd ------------------------------
(***************************************************************************)
(* Model of the life of one parked io_uring command of /dev/elasticq       *)
(* (kmod/eq_uring.c, kmod/eq_uring_compat.h): PUSH_BATCH or POP_BATCH as   *)
(* IORING_OP_URING_CMD whose batch cannot run at once, so that the command *)
(* parks a struct eq_uring_wait ("the wait entry", w) on the queue's wait  *)
(* queue until a producer/consumer wakes it, its timeout expires, the      *)
(* submitter closes the file (->flush), or its ring or task goes away.     *)
(*                                                                         *)
(* Actors: the OWNER (the issue path eq_uring_park(), later the task work  *)
(* eq_uring_tw(); one at a time, a single program counter pc); the WAKER   *)
(* (wake_up() on the queue's wait queue calling eq_uring_wake()); the      *)
(* hrtimer callback eq_uring_timeout(); eq_uring_flush() on close; and,    *)
(* on 6.12 (Cancelable = TRUE), io_uring's cancel walk of its cancelable   *)
(* list (io_uring_try_cancel_uring_cmd() -> ->uring_cmd(IO_URING_F_CANCEL) *)
(* -> eq_uring_end(pdu, -ECANCELED)) at ring teardown, task exit and exec; *)
(* on 6.1 (Cancelable = FALSE) the delayed work eq_uring_watch() instead.  *)
(*                                                                         *)
(* Granularity: one action = one atomic operation of the code (a cmpxchg,  *)
(* an atomic_set, a section under a spinlock or mutex) plus the local      *)
(* computation after it.  Locks that are held across several actions are  *)
(* variables: uringLock (ctx->uring_lock: held by an inline issue for the  *)
(* whole issue, by task work for the whole callback, by the cancel walk    *)
(* for the whole walk; an io-wq issue (IOSQE_ASYNC) does NOT hold it and   *)
(* takes it only inside io_uring_cmd_mark_cancelable() and                *)
(* io_uring_cmd_done()), and listLock (eq_uring_lock, held by flush and    *)
(* the watch across their eq_uring_end()).  The wait queue's lock makes    *)
(* arm, disarm and a whole eq_uring_wake() single actions.                 *)
(*                                                                         *)
(* Lifetimes: freed = kfree(w) happened; every action that reads or writes *)
(* w records touchedFreed if w is freed (NoTouchFreed).  cmdDone =         *)
(* io_uring_cmd_done() happened: from then on the request belongs to       *)
(* io_uring, which may free it and put its file (6.1 posts the completion  *)
(* at once from an unlocked or fallback task work: io_req_complete_post()  *)
(* frees the request, puts the file and the task); every action that      *)
(* touches the command (cmd, its request, task, ctx) or the queue reached  *)
(* through the command's file (its wait queue, the batch) records          *)
(* touchedDone if the command is done (NoTouchDone).                       *)
(*                                                                         *)
(* Switches (constants):                                                   *)
(*  Cancelable = TRUE  : 6.12, io_uring_cmd_mark_cancelable(), the cancel  *)
(*                       callback; FALSE: 6.1, eq_uring_watch().           *)
(*  Order: the steps of eq_uring_done() (eq_uring_free()'s list_del from   *)
(*   eq_uring_parked, hrtimer_cancel, disarm, kfree; io_uring_cmd_done):   *)
(*   "FreeThenDone"   eq_uring_free(w); io_uring_cmd_done(cmd) (the bug:   *)
(*                    a cancel walk reads the freed w through cmd->pdu);   *)
(*   "DoneThenFree"   io_uring_cmd_done(cmd); eq_uring_free(w);            *)
(*   "DetachDoneFree" unlist, hrtimer_cancel, disarm; io_uring_cmd_done;   *)
(*                    kfree(w).                                            *)
(***************************************************************************)
EXTENDS Naturals, TLC

CONSTANTS
    Cancelable,    \* TRUE: 6.12 cancelable command; FALSE: 6.1 watch
    Order,         \* order of the steps of eq_uring_done(), see above
    MaxSpurious    \* bound on wake-ups that do not make the batch runnable

ASSUME Cancelable \in BOOLEAN
ASSUME Order \in {"FreeThenDone", "DoneThenFree", "DetachDoneFree"}
ASSUME MaxSpurious \in Nat

\* The steps of eq_uring_done() in the order Order runs them.
DoneSteps ==
    CASE Order = "FreeThenDone"   ->
            <<"unlist", "tcancel", "disarm", "kfree", "cmddone">>
      [] Order = "DoneThenFree"   ->
            <<"cmddone", "unlist", "tcancel", "disarm", "kfree">>
      [] Order = "DetachDoneFree" ->
            <<"unlist", "tcancel", "disarm", "cmddone", "kfree">>
StepNames == {"unlist", "tcancel", "disarm", "kfree", "cmddone"}
FirstDone == DoneSteps[1]
AfterDone(s) == LET i == CHOOSE j \in 1..5 : DoneSteps[j] = s
                IN  IF i = 5 THEN "end" ELSE DoneSteps[i + 1]

Reasons == {"none", "timeout", "canceled"}

VARIABLES
    \* ---- the owner: issue path, then task work ----
    pc,          \* program counter, see Owner below
    async,       \* issued from io-wq (IOSQE_ASYNC): no uring_lock held
    tmo,         \* the batch's timeout: "none" (TIMEOUT_NONE), "zero", "finite"
    res,         \* the result eq_uring_done() will post
    \* ---- locks held across actions ----
    uringLock,   \* ctx->uring_lock: "none", "owner", "cancel"
    listLock,    \* eq_uring_lock: "none", "flush", "watch"
    \* ---- the wait entry w and where it is linked ----
    alloc,       \* w allocated (kzalloc in eq_uring_cmd)
    freed,       \* w freed (kfree)
    state,       \* w->state: "armed", "woken", "parked", "fired"
    reason,      \* w->reason: "none", "timeout" (-ETIMEDOUT), "canceled"
    onWq,        \* w->wait on the queue's readers/writers wait queue
    onParked,    \* w->node on eq_uring_parked
    timer,       \* w->timer: "off", "pending", "running" (callback between
                 \* its two steps), "fired"
    \* ---- the command ----
    onCancel,    \* on io_uring's cancelable list (6.12)
    twQueued,    \* io_uring_cmd_complete_in_task() queued, not yet run
    doubleTw,    \* task work queued while already queued (must stay FALSE)
    cmdDone,     \* io_uring_cmd_done() called
    completions, \* number of io_uring_cmd_done() calls
    result,      \* the posted result: "none", "ok", "timeout", "canceled"
    \* ---- environment ----
    ready,       \* the batch can run (messages / room); stays TRUE
    wakeDue,     \* the wake_up() that follows making it ready is owed
    spurious,    \* spurious wake-ups so far (at most MaxSpurious)
    abandoned,   \* ring teardown, task exit or exec began
    closed,      \* the submitter closed the file (after the submission)
    flushHit,    \* the flush found the wait entry on eq_uring_parked
    \* ---- other actors ----
    kpc,         \* cancel walk: "idle", "fire"
    fpc,         \* flush: "idle", "start", "fire", "done"
    wpc,         \* 6.1 watch: "idle", "fire"
    \* ---- history ----
    touchedFreed, \* an action read or wrote w after kfree(w)
    touchedDone   \* an action touched the command after io_uring_cmd_done

ownerVars == <<pc, async, tmo, res>>
lockVars  == <<uringLock, listLock>>
entryVars == <<alloc, freed, state, reason, onWq, onParked, timer>>
cmdVars   == <<onCancel, twQueued, doubleTw, cmdDone, completions, result>>
envVars   == <<ready, wakeDue, spurious, abandoned, closed, flushHit>>
actorVars == <<kpc, fpc, wpc>>
histVars  == <<touchedFreed, touchedDone>>
vars == <<ownerVars, lockVars, entryVars, cmdVars, envVars, actorVars,
          histVars>>

OwnerPCs == {"none", "list", "mark", "arm", "tstart", "run", "reason",
             "park", "parked", "tw", "twarm", "end"} \cup StepNames

TypeOK ==
    /\ pc \in OwnerPCs
    /\ async \in BOOLEAN
    /\ tmo \in {"none", "zero", "finite"}
    /\ res \in {"none", "ok", "timeout", "canceled"}
    /\ uringLock \in {"none", "owner", "cancel"}
    /\ listLock \in {"none", "flush", "watch"}
    /\ alloc \in BOOLEAN /\ freed \in BOOLEAN
    /\ state \in {"armed", "woken", "parked", "fired"}
    /\ reason \in Reasons
    /\ onWq \in BOOLEAN /\ onParked \in BOOLEAN
    /\ timer \in {"off", "pending", "running", "fired"}
    /\ onCancel \in BOOLEAN /\ twQueued \in BOOLEAN /\ doubleTw \in BOOLEAN
    /\ cmdDone \in BOOLEAN /\ completions \in 0..2
    /\ result \in {"none", "ok", "timeout", "canceled"}
    /\ ready \in BOOLEAN /\ wakeDue \in BOOLEAN /\ spurious \in 0..MaxSpurious
    /\ abandoned \in BOOLEAN /\ closed \in BOOLEAN /\ flushHit \in BOOLEAN
    /\ kpc \in {"idle", "fire"}
    /\ fpc \in {"idle", "start", "fire", "done"}
    /\ wpc \in {"idle", "fire"}
    /\ touchedFreed \in BOOLEAN /\ touchedDone \in BOOLEAN

Init ==
    /\ pc = "none" /\ async = FALSE /\ tmo = "none" /\ res = "none"
    /\ uringLock = "none" /\ listLock = "none"
    /\ alloc = FALSE /\ freed = FALSE /\ state = "armed" /\ reason = "none"
    /\ onWq = FALSE /\ onParked = FALSE /\ timer = "off"
    /\ onCancel = FALSE /\ twQueued = FALSE /\ doubleTw = FALSE
    /\ cmdDone = FALSE /\ completions = 0 /\ result = "none"
    /\ ready = FALSE /\ wakeDue = FALSE /\ spurious = 0 /\ abandoned = FALSE
    /\ closed = FALSE /\ flushHit = FALSE
    /\ kpc = "idle" /\ fpc = "idle" /\ wpc = "idle"
    /\ touchedFreed = FALSE /\ touchedDone = FALSE

(***************************************************************************)
(* Helpers                                                                 *)
(***************************************************************************)
\* The action reads or writes w (tw) and/or the command or its queue (tc).
Touch(tw, tc) ==
    /\ touchedFreed' = (touchedFreed \/ (tw /\ freed))
    /\ touchedDone'  = (touchedDone \/ (tc /\ cmdDone))

\* cmpxchg(&w->reason, 0, r): the first reason wins.
SetReason(r) == reason' = IF reason = "none" THEN r ELSE reason

\* eq_uring_fire(w) and, if it won PARKED -> FIRED, the caller's
\* io_uring_cmd_complete_in_task(w->cmd) (and, for eq_uring_wake(), its
\* list_del_init() of the entry: offWq).  ARMED -> WOKEN: the running batch
\* looks again.  WOKEN, FIRED: nothing.
FireWins == state = "parked"
Fire(offWq) ==
    /\ state' = CASE state = "armed"  -> "woken"
                  [] state = "parked" -> "fired"
                  [] OTHER            -> state
    /\ twQueued' = (twQueued \/ FireWins)
    /\ doubleTw' = (doubleTw \/ (FireWins /\ twQueued))
    /\ onWq' = IF FireWins /\ offWq THEN FALSE ELSE onWq

\* The owner holds ctx->uring_lock from here to its next return to io_uring.
OwnerLocked == uringLock = "owner"

(***************************************************************************)
(* The owner                                                               *)
(***************************************************************************)
\* eq_uring_cmd(): kzalloc w, read the arguments, claim the queue; then
\* eq_uring_park() up to the list_add: pdu := w, init the entry and timer,
\* reason := -ETIMEDOUT for a zero timeout.  Nobody else sees w yet.  An
\* inline issue (io_uring_enter, SQPOLL) holds uring_lock throughout; an
\* io-wq issue (IOSQE_ASYNC, or a punt) does not.
Issue ==
    /\ pc = "none"
    /\ \E a \in BOOLEAN, t \in {"none", "zero", "finite"} :
          /\ async' = a
          /\ tmo' = t
          /\ reason' = IF t = "zero" THEN "timeout" ELSE "none"
          /\ a = FALSE => uringLock = "none"
          /\ uringLock' = IF a THEN uringLock ELSE "owner"
    /\ alloc' = TRUE
    /\ pc' = "list"
    /\ Touch(FALSE, FALSE)
    /\ UNCHANGED <<res, listLock, freed, state, onWq, onParked, timer,
                   cmdVars, envVars, actorVars>>

\* spin_lock(&eq_uring_lock); list_add_tail(&w->node, &eq_uring_parked)
List ==
    /\ pc = "list" /\ listLock = "none"
    /\ onParked' = TRUE
    /\ pc' = "mark"
    /\ Touch(TRUE, FALSE)
    /\ UNCHANGED <<async, tmo, res, lockVars, alloc, freed, state, reason,
                   onWq, timer, cmdVars, envVars, actorVars>>

\* eq_uring_mark_cancelable(): on 6.12 io_uring_cmd_mark_cancelable() adds
\* the command to ctx->cancelable_uring_cmd under uring_lock (taken here if
\* the issue does not hold it).  Nothing on 6.1.
Mark ==
    /\ pc = "mark"
    /\ Cancelable => uringLock \in {"none", "owner"}
    /\ onCancel' = Cancelable
    /\ pc' = "arm"
    /\ Touch(FALSE, TRUE)
    /\ UNCHANGED <<async, tmo, res, lockVars, entryVars, twQueued, doubleTw,
                   cmdDone, completions, result, envVars, actorVars>>

\* eq_uring_arm(): atomic_set(state, ARMED); under the wait queue's lock
\* add the entry if it is not on it.  From the issue path (then the timer
\* is started) or from the task work (then the batch runs).
ArmStep(next) ==
    /\ state' = "armed"
    /\ onWq' = TRUE
    /\ pc' = next
    /\ Touch(TRUE, TRUE)
    /\ UNCHANGED <<async, tmo, res, lockVars, alloc, freed, reason,
                   onParked, timer, cmdVars, envVars, actorVars>>
Arm   == pc = "arm"   /\ ArmStep("tstart")
TwArm == pc = "twarm" /\ ArmStep("run")

\* hrtimer_start() if the batch has a finite timeout (6.1 also schedules the
\* watch here; the watch is always ready to run in this model).
TimerStart ==
    /\ pc = "tstart"
    /\ timer' = IF tmo = "finite" THEN "pending" ELSE timer
    /\ pc' = "run"
    /\ Touch(TRUE, FALSE)
    /\ UNCHANGED <<async, tmo, res, lockVars, alloc, freed, state, reason,
                   onWq, onParked, cmdVars, envVars, actorVars>>

\* eq_uring_try(): eq_uring_run() runs the batch once without sleeping.
\* Runs: the result ("ok" stands for every result of a batch that ran,
\* including a nonblocking one's -EAGAIN); must wait: read the reason.
Run ==
    /\ pc = "run"
    /\ IF ready THEN /\ res' = "ok"
                     /\ pc' = FirstDone
                ELSE /\ pc' = "reason"
                     /\ UNCHANGED res
    /\ Touch(TRUE, TRUE)
    /\ UNCHANGED <<async, tmo, lockVars, entryVars, cmdVars, envVars,
                   actorVars>>

\* reason := READ_ONCE(w->reason); if set, eq_uring_gave_up() (reads
\* w->cmd for its task) and eq_uring_done().
Reason ==
    /\ pc = "reason"
    /\ IF reason # "none" THEN /\ res' = reason
                               /\ pc' = FirstDone
                          ELSE /\ pc' = "park"
                               /\ UNCHANGED res
    /\ Touch(TRUE, reason # "none")
    /\ UNCHANGED <<async, tmo, lockVars, entryVars, cmdVars, envVars,
                   actorVars>>

\* atomic_cmpxchg(state, ARMED, PARKED): won -> return -EIOCBQUEUED (the
\* issue or task work returns to io_uring and releases uring_lock if it
\* held it; from now on the command belongs to whoever fires it); lost
\* (WOKEN) -> atomic_set(state, ARMED) and run again.
Park ==
    /\ pc = "park"
    /\ IF state = "armed"
          THEN /\ state' = "parked"
               /\ pc' = "parked"
               /\ uringLock' = IF OwnerLocked THEN "none" ELSE uringLock
          ELSE /\ state' = "armed"
               /\ pc' = "run"
               /\ UNCHANGED uringLock
    /\ Touch(TRUE, FALSE)
    /\ UNCHANGED <<async, tmo, res, listLock, alloc, freed, reason, onWq,
                   onParked, timer, cmdVars, envVars, actorVars>>

\* The task work runs (io_uring_cmd_work -> eq_uring_tw), in the task or,
\* if it is exiting, in a fallback worker.  On 6.12 task work runs with
\* uring_lock held (also the fallback); 6.1 has no cancel walk to exclude.
TwRun ==
    /\ pc = "parked" /\ twQueued
    /\ Cancelable => uringLock = "none"
    /\ uringLock' = IF Cancelable THEN "owner" ELSE uringLock
    /\ twQueued' = FALSE
    /\ pc' = "tw"
    /\ Touch(FALSE, TRUE)
    /\ UNCHANGED <<async, tmo, res, listLock, entryVars, onCancel, doubleTw,
                   cmdDone, completions, result, envVars, actorVars>>

\* eq_uring_tw(): w := pdu; current is not the task, or it is exiting
\* (possible once the task exits/execs: abandoned), or the reason is
\* -ECANCELED: eq_uring_gave_up(-ECANCELED) and eq_uring_done(); else arm.
TwCheck ==
    /\ pc = "tw"
    /\ \E exiting \in BOOLEAN :
          /\ exiting => abandoned
          /\ IF exiting \/ reason = "canceled"
                THEN /\ res' = "canceled"
                     /\ pc' = FirstDone
                ELSE /\ pc' = "twarm"
                     /\ UNCHANGED res
    /\ Touch(TRUE, TRUE)
    /\ UNCHANGED <<async, tmo, lockVars, entryVars, cmdVars, envVars,
                   actorVars>>

\* ---- eq_uring_done(): its steps in the order Order says ----
\* The owner returns to io_uring after the last one (releasing uring_lock).
DoneNext(s) ==
    /\ pc' = AfterDone(s)
    /\ uringLock' = IF AfterDone(s) = "end" /\ OwnerLocked THEN "none"
                    ELSE uringLock

\* eq_uring_free(): spin_lock(&eq_uring_lock); list_del(&w->node)
Unlist ==
    /\ pc = "unlist" /\ listLock = "none"
    /\ onParked' = FALSE
    /\ DoneNext("unlist")
    /\ Touch(TRUE, FALSE)
    /\ UNCHANGED <<async, tmo, res, listLock, alloc, freed, state, reason,
                   onWq, timer, cmdVars, envVars, actorVars>>

\* eq_uring_free(): hrtimer_cancel(&w->timer), which waits for a running
\* callback.
TCancel ==
    /\ pc = "tcancel" /\ timer # "running"
    /\ timer' = IF timer = "pending" THEN "off" ELSE timer
    /\ DoneNext("tcancel")
    /\ Touch(TRUE, FALSE)
    /\ UNCHANGED <<async, tmo, res, listLock, alloc, freed, state, reason,
                   onWq, onParked, cmdVars, envVars, actorVars>>

\* eq_uring_disarm(): under the queue's wait-queue lock, list_del_init.
Disarm ==
    /\ pc = "disarm"
    /\ onWq' = FALSE
    /\ DoneNext("disarm")
    /\ Touch(TRUE, TRUE)
    /\ UNCHANGED <<async, tmo, res, listLock, alloc, freed, state, reason,
                   onParked, timer, cmdVars, envVars, actorVars>>

\* kfree(w)  (a second kfree would count as a touch of freed memory)
KFree ==
    /\ pc = "kfree"
    /\ freed' = TRUE
    /\ DoneNext("kfree")
    /\ Touch(TRUE, FALSE)
    /\ UNCHANGED <<async, tmo, res, listLock, alloc, state, reason, onWq,
                   onParked, timer, cmdVars, envVars, actorVars>>

\* io_uring_cmd_done(cmd, res): on 6.12 io_uring_cmd_del_cancelable()
\* takes uring_lock (unless the caller holds it: task work, inline issue)
\* and removes the command from the cancelable list; then the completion
\* is posted.  The command now belongs to io_uring.
CmdDone ==
    /\ pc = "cmddone"
    /\ Cancelable => uringLock \in {"none", "owner"}
    /\ onCancel' = FALSE
    /\ cmdDone' = TRUE
    /\ completions' = completions + 1
    /\ result' = res
    /\ DoneNext("cmddone")
    /\ Touch(FALSE, TRUE)
    /\ UNCHANGED <<async, tmo, res, listLock, entryVars, twQueued, doubleTw,
                   envVars, actorVars>>

Owner == Issue \/ List \/ Mark \/ Arm \/ TimerStart \/ Run \/ Reason \/ Park
         \/ TwRun \/ TwCheck \/ TwArm
         \/ Unlist \/ TCancel \/ Disarm \/ KFree \/ CmdDone

(***************************************************************************)
(* The other actors                                                        *)
(***************************************************************************)
\* eq_uring_timeout() step 1: the hrtimer expires; cmpxchg(reason, -ETIMEDOUT).
TimerExpire ==
    /\ timer = "pending"
    /\ timer' = "running"
    /\ SetReason("timeout")
    /\ Touch(TRUE, FALSE)
    /\ UNCHANGED <<ownerVars, lockVars, alloc, freed, state, onWq, onParked,
                   cmdVars, envVars, actorVars>>

\* eq_uring_timeout() step 2: eq_uring_fire(), complete_in_task if it won.
TimerFire ==
    /\ timer = "running"
    /\ timer' = "fired"
    /\ Fire(FALSE)
    /\ Touch(TRUE, FireWins)
    /\ UNCHANGED <<ownerVars, lockVars, alloc, freed, reason, onParked,
                   onCancel, cmdDone, completions, result, envVars,
                   actorVars>>

Timer == TimerExpire \/ TimerFire

\* A producer (consumer, for a push) makes the batch runnable; the
\* wake_up() it owes follows (Wake).
Produce ==
    /\ ~ready
    /\ ready' = TRUE
    /\ wakeDue' = TRUE
    /\ Touch(FALSE, FALSE)
    /\ UNCHANGED <<ownerVars, lockVars, entryVars, cmdVars, spurious,
                   abandoned, closed, flushHit, actorVars>>

\* wake_up() on the queue's wait queue, owed or spurious (every push/pop
\* wakes, also when this batch still cannot run; at most MaxSpurious of
\* those, else a wake-up landing in every run of the issue loop would keep
\* it looping forever): under the wait queue's lock, eq_uring_wake() on the
\* entry if it is on the queue.
Wake ==
    /\ wakeDue \/ (onWq /\ spurious < MaxSpurious)
    /\ wakeDue' = FALSE
    /\ spurious' = IF wakeDue THEN spurious ELSE spurious + 1
    /\ IF onWq THEN /\ Fire(TRUE)
                    /\ Touch(TRUE, FireWins)
               ELSE /\ UNCHANGED <<state, twQueued, doubleTw, onWq>>
                    /\ Touch(FALSE, FALSE)
    /\ UNCHANGED <<ownerVars, lockVars, alloc, freed, reason, onParked, timer,
                   onCancel, cmdDone, completions, result, ready, abandoned,
                   closed, flushHit, actorVars>>

\* The ring is torn down, or the task exits or execs (6.12: io_uring's
\* cancel walk from now on; 6.1: the watch sees it).
Abandon ==
    /\ ~abandoned
    /\ abandoned' = TRUE
    /\ Touch(FALSE, FALSE)
    /\ UNCHANGED <<ownerVars, lockVars, entryVars, cmdVars, ready, wakeDue,
                   spurious, closed, flushHit, actorVars>>

\* 6.12 cancel walk (io_uring_try_cancel_uring_cmd, under uring_lock,
\* repeated until the command is gone): for our command on the cancelable
\* list, ->uring_cmd(IO_URING_F_CANCEL): w := cmd->pdu;
\* eq_uring_end(w, -ECANCELED) step 1: cmpxchg(reason).
Cancel1 ==
    /\ Cancelable /\ abandoned /\ onCancel
    /\ kpc = "idle" /\ uringLock = "none"
    /\ uringLock' = "cancel"
    /\ kpc' = "fire"
    /\ SetReason("canceled")
    /\ Touch(TRUE, TRUE)
    /\ UNCHANGED <<ownerVars, listLock, alloc, freed, state, onWq, onParked,
                   timer, cmdVars, envVars, fpc, wpc>>

\* eq_uring_end() step 2: eq_uring_fire(), complete_in_task if it won;
\* the walk ends and releases uring_lock.
Cancel2 ==
    /\ kpc = "fire"
    /\ kpc' = "idle"
    /\ uringLock' = "none"
    /\ Fire(FALSE)
    /\ Touch(TRUE, FireWins)
    /\ UNCHANGED <<ownerVars, listLock, alloc, freed, reason, onParked, timer,
                   onCancel, cmdDone, completions, result, envVars, fpc, wpc>>

Cancel == Cancel1 \/ Cancel2

\* The submitter closes the file after submitting the command (io_uring
\* took its own reference on the file at submission): ->flush runs once.
Close ==
    /\ ~closed /\ pc # "none"
    /\ closed' = TRUE
    /\ fpc' = "start"
    /\ Touch(FALSE, FALSE)
    /\ UNCHANGED <<ownerVars, lockVars, entryVars, cmdVars, ready, wakeDue,
                   spurious, abandoned, flushHit, kpc, wpc>>

\* eq_uring_flush(): spin_lock(&eq_uring_lock); for w on eq_uring_parked
\* with our file and owner: eq_uring_end(w, -ECANCELED) step 1.
Flush1 ==
    /\ fpc = "start" /\ listLock = "none"
    /\ IF onParked
          THEN /\ listLock' = "flush"
               /\ fpc' = "fire"
               /\ SetReason("canceled")
               /\ flushHit' = TRUE
               /\ Touch(TRUE, FALSE)
          ELSE /\ fpc' = "done"
               /\ UNCHANGED <<listLock, reason, flushHit>>
               /\ Touch(FALSE, FALSE)
    /\ UNCHANGED <<ownerVars, uringLock, alloc, freed, state, onWq, onParked,
                   timer, cmdVars, ready, wakeDue, spurious, abandoned, closed,
                   kpc, wpc>>

\* eq_uring_end() step 2, then spin_unlock(&eq_uring_lock).
Flush2 ==
    /\ fpc = "fire"
    /\ fpc' = "done"
    /\ listLock' = "none"
    /\ Fire(FALSE)
    /\ Touch(TRUE, FireWins)
    /\ UNCHANGED <<ownerVars, uringLock, alloc, freed, reason, onParked, timer,
                   onCancel, cmdDone, completions, result, envVars, kpc, wpc>>

Flush == Flush1 \/ Flush2

\* 6.1 eq_uring_watch() (every 50 ms while eq_uring_parked is not empty):
\* under eq_uring_lock, eq_uring_abandoned(w->cmd) reads the command's
\* request, ctx and task; if abandoned, eq_uring_end(w, -ECANCELED) step 1.
Watch1 ==
    /\ ~Cancelable /\ onParked
    /\ wpc = "idle" /\ listLock = "none"
    /\ IF abandoned
          THEN /\ listLock' = "watch"
               /\ wpc' = "fire"
               /\ SetReason("canceled")
          ELSE UNCHANGED <<listLock, wpc, reason>>
    /\ Touch(TRUE, TRUE)
    /\ UNCHANGED <<ownerVars, uringLock, alloc, freed, state, onWq, onParked,
                   timer, cmdVars, envVars, kpc, fpc>>

\* eq_uring_end() step 2, then spin_unlock(&eq_uring_lock).
Watch2 ==
    /\ wpc = "fire"
    /\ wpc' = "idle"
    /\ listLock' = "none"
    /\ Fire(FALSE)
    /\ Touch(TRUE, FireWins)
    /\ UNCHANGED <<ownerVars, uringLock, alloc, freed, reason, onParked, timer,
                   onCancel, cmdDone, completions, result, envVars, kpc, fpc>>

Watcher == Watch1 \/ Watch2

\* Everything settled: the command ended and nothing else can happen.
Finished ==
    /\ pc = "end" /\ kpc = "idle" /\ fpc \in {"idle", "done"}
    /\ wpc = "idle" /\ ~wakeDue /\ ~onWq
    /\ UNCHANGED vars

Next == Owner \/ Timer \/ Produce \/ Wake \/ Abandon \/ Cancel \/ Close
        \/ Flush \/ Watcher \/ Finished

(***************************************************************************)
(* Fairness: the owner and every callback keep running; a started timer    *)
(* expires; the owed wake-up happens; io_uring's cancel walk and the watch *)
(* repeat while the command is there (strong fairness: they need a lock    *)
(* that others take and release).  Issue, Produce, Abandon, Close and      *)
(* spurious wake-ups are the environment's choice (no fairness).           *)
(***************************************************************************)
Fairness ==
    /\ SF_vars(Owner /\ pc # "none")
    /\ WF_vars(Timer)
    /\ WF_vars(wakeDue /\ Wake)
    /\ SF_vars(Cancel)
    /\ SF_vars(Flush)
    /\ SF_vars((Watch1 /\ abandoned) \/ Watch2)

Spec == Init /\ [][Next]_vars /\ Fairness

(***************************************************************************)
(* Properties                                                              *)
(***************************************************************************)
\* The command completes at most once (io_uring_cmd_done() once).
CompletesOnce == completions <= 1

\* Nothing reads or writes w after kfree(w).
NoTouchFreed == ~touchedFreed

\* Nothing touches the command (or its file's queue) after
\* io_uring_cmd_done().
NoTouchDone == ~touchedDone

\* Task work is queued only for a parked command, once, and nobody runs
\* the batch meanwhile; a parked command is run by nobody.
OneRunner ==
    /\ ~doubleTw
    /\ twQueued => (pc = "parked" /\ state = "fired" /\ ~cmdDone)
    /\ state = "parked" => pc = "parked"

\* The posted result has a cause.
ResultJustified ==
    /\ result = "ok"       => ready
    /\ result = "timeout"  => tmo # "none"
    /\ result = "canceled" => abandoned \/ closed

\* When the owner is through, the command completed once and w is freed
\* and linked nowhere.
EndClean ==
    pc = "end" =>
        /\ completions = 1 /\ freed
        /\ ~onWq /\ ~onParked /\ ~onCancel /\ ~twQueued
        /\ timer \in {"off", "fired"}

\* Liveness: an issued command that has something to end its wait (its
\* batch can run, a timeout, its ring or task going away, a close whose
\* flush found it) eventually completes and its wait entry is freed.
Ends ==
    (pc # "none" /\ (ready \/ tmo # "none" \/ flushHit \/ abandoned))
        ~> (pc = "end")

\* Stronger: every close after the submission ends the command.  Does NOT
\* hold (UringCmd_CloseRace.cfg): a flush that runs before the issue put
\* w on eq_uring_parked (an IOSQE_ASYNC command waits for an io-wq worker
\* after io_uring_enter() returned) does not see it.
CloseEnds ==
    (pc # "none" /\ closed) ~> (pc = "end")
=============================================================================
