---------------------------- MODULE ElasticMPSC ----------------------------
(***************************************************************************)
(* Model of the elasticq lock-free MPSC queue (kmod/eq_lfring.c design,    *)
(* "lf-design.md"): a Vyukov bounded queue with per-slot sequence numbers  *)
(* in each ring, consumer-driven resizes (link the producers' ring to a    *)
(* new ring, publish the new ring, then close the old one), and RCU        *)
(* reclamation of retired rings.  A resize may happen while the consumer   *)
(* still drains older rings: the rings then form a chain cons -> ... ->    *)
(* prod along the consumer-private pointers next[r], which the consumer    *)
(* follows when it has drained a closed ring.                              *)
(*                                                                         *)
(* Granularity: every action below is ONE atomic memory operation of the   *)
(* design (a load, a store, a CAS, a fetch_or), plus the purely local       *)
(* computation that follows it.  Labels "P<n>" refer to the steps of       *)
(* "Producer enqueue", "C<n>" to "Consumer dequeue", "R<n>" to "Resize".   *)
(*                                                                         *)
(* Memory model: the model is sequentially consistent.  That is justified  *)
(* by the acquire/release pairs of the design, which order every           *)
(* cross-thread data flow the algorithm relies on:                         *)
(*  - msg write  -> store_release(seq, t+1)  /  load_acquire(seq) -> msg   *)
(*    read (producer publishes, consumer takes);                           *)
(*  - msg read -> store_release(seq, p+C)  /  load_acquire(seq) -> msg     *)
(*    write (consumer frees, next-lap producer overwrites);                *)
(*  - ring initialisation -> rcu_assign_pointer(prod) / rcu_dereference    *)
(*    (new ring fully initialised before a producer can see it);           *)
(*  - all writes of R.T are RMWs (CAS, fetch_or) on one location, so they  *)
(*    are totally ordered (coherence); a plain load of R.T that returns an *)
(*    older value is equivalent to that load having happened earlier,      *)
(*    and the CAS re-validates it.                                         *)
(* Weaker-memory behaviours beyond these pairs are not explored.           *)
(*                                                                         *)
(* Abstractions: payloads are abstract message identities <<p, k>> (the    *)
(* k-th message of producer p); positions are unbounded naturals (the      *)
(* 64-bit counters of the design; wrap-around is not modelled); the        *)
(* CLOSED bit of R.T is a separate boolean `closed[r]` that is compared    *)
(* together with the tail value by every CAS (so CAS(t -> t+1) fails on a  *)
(* closed ring, exactly like the bit-63 encoding); FULL/EAGAIN and the     *)
(* wait queues are modelled by the producer simply retrying from P1; the  *)
(* consumer's EMPTY by going back to idle (it polls again later).  The     *)
(* grow/shrink policy is abstracted: whenever it is idle (also while it    *)
(* still drains older rings, cons # prod) the consumer may resize the      *)
(* producers' ring to any other capacity in Caps (at most MaxResizes       *)
(* times).  The cursor walk (eq_lfq_peek_next) is not modelled; it follows *)
(* the same next pointers as Switch but changes nothing.                   *)
(*                                                                         *)
(* Switches (constants):                                                   *)
(*  ReadyMark = TRUE  : the design.                                        *)
(*  ReadyMark = FALSE : the original crate's bug (mutant): the producer    *)
(*     writes the slot after its CAS but never publishes a ready mark; the *)
(*     consumer takes position p as soon as R.T > p.                       *)
(*  WaitGrace = TRUE  : a retired ring is freed only after a grace period. *)
(*  WaitGrace = FALSE : (sanity check of the RCU model) freed at once.     *)
(*  SeqStride = 1     : the design's sequence values (free t, ready t+1).  *)
(*  SeqStride = 2     : the fix for capacity 1 (free 2t, ready 2t+1), as   *)
(*     implemented (EQ_LF_FREE / EQ_LF_READY).                             *)
(***************************************************************************)
EXTENDS Naturals, Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Producers,     \* set of producer ids (model values)
    NumMsgs,       \* messages per producer
    Caps,          \* capacities the queue may take (initial one = InitCap)
    InitCap,       \* capacity of the first ring
    MaxResizes,    \* bound on the number of resizes (keeps the model finite)
    ReadyMark,     \* TRUE: design;  FALSE: original crate's bug
    WaitGrace,     \* TRUE: RCU grace period honoured before free
    SeqStride      \* 1: design (seq values t / t+1 / t+C); 2: the fix

ASSUME InitCap \in Caps /\ Caps \subseteq Nat \ {0}
ASSUME NumMsgs \in Nat /\ MaxResizes \in Nat
ASSUME ReadyMark \in BOOLEAN /\ WaitGrace \in BOOLEAN /\ SeqStride \in {1, 2}

MinCap == CHOOSE c \in Caps : \A d \in Caps : c <= d
MaxCap == CHOOSE c \in Caps : \A d \in Caps : c >= d

Rings  == 1..(MaxResizes + 1)        \* ring ids; a ring id is never reused
Slots  == 0..(MaxCap - 1)            \* slot array (only 0..cap[r]-1 used)
Msgs   == Producers \X (1..NumMsgs)  \* message identities
NoMsg  == <<"garbage">>              \* content of a never-written slot
NoRing == 0

VARIABLES
    \* ---- shared memory: rings ----
    cap,        \* cap[r]    : capacity of ring r (0 = not allocated yet)
    tail,       \* tail[r]   : R.T without the CLOSED bit
    closed,     \* closed[r] : the CLOSED bit (bit 63) of R.T
    seq,        \* seq[r][i] : per-slot sequence number
    msg,        \* msg[r][i] : per-slot message
    next,       \* next[r]   : r->next, the ring after r in the chain (NoRing:
                \*             none yet); written and read only by the consumer
    \* ---- shared memory: queue ----
    prod,       \* ring producers reserve in (RCU-protected pointer)
    \* ---- consumer-private ----
    cons,       \* ring the consumer drains
    head,       \* consumer's next position in cons
    cpc,        \* consumer program counter
    cready,     \* result of C1: position head is ready (seq == head+1)
    cmsg,       \* message read in C2
    cdone,      \* all producers had finished when C1 loaded the seq (for Quiet)
    newRing,    \* ring allocated by R1 (until R2 publishes it)
    oldProd,    \* the producers' ring before R2 (closed by R3)
    oldCons,    \* the drained ring left by Switch (retired by Retire)
    resizes,    \* number of resizes started
    \* ---- RCU ----
    inRS,       \* inRS[p] : producer p is inside rcu_read_lock/unlock
    retired,    \* retired[r] : call_rcu done for r
    gp,         \* gp[r] : producers that were in a read section at retire
                \*         time and have not left it yet
    freed,      \* freed[r] : ring memory freed (kfree after grace period)
    touchedFreed, \* some step read or wrote a freed ring (must stay FALSE)
    \* ---- producer-private ----
    pc,         \* pc[p]
    nxt,        \* nxt[p] : index of the message being enqueued (NumMsgs+1: done)
    pR,         \* pR[p]  : ring pointer R read in P1
    pt,         \* pt[p]  : t (tail value seen)
    ptc,        \* ptc[p] : CLOSED bit seen with t
    ps,         \* ps[p]  : s (seq value seen)
    \* ---- history ----
    out,        \* sequence of messages returned by dequeue, in order
    quiet       \* consumer just returned EMPTY although all producers were done

prodVars == <<pc, nxt, pR, pt, ptc, ps>>
consVars == <<cons, head, cpc, cready, cmsg, cdone, newRing, oldProd, oldCons,
              resizes>>
ringVars == <<cap, tail, closed, seq, msg, next, prod>>
rcuVars  == <<inRS, retired, gp, freed>>
vars == <<ringVars, consVars, rcuVars, prodVars, touchedFreed, out, quiet>>

Slot(r, pos) == pos % cap[r]

\* Slot sequence values.  Design (SeqStride = 1): "free for position t" is t,
\* "position t written" (ready mark) is t+1.  With C = 1 these collide:
\* ready(t) = t+1 = free(t+1), so a producer of position t+1 takes the slot
\* before the consumer has read position t (see README).  The proposed fix
\* (SeqStride = 2) uses free(t) = 2t, ready(t) = 2t+1, which never collide.
FreeMark(pos)  == pos * SeqStride
ReadyMk(pos)   == pos * SeqStride + 1
AllProducersDone == \A p \in Producers : pc[p] = "done"

\* rcu_read_unlock by p: p leaves every pending grace period.
Unlock(p) == /\ inRS' = [inRS EXCEPT ![p] = FALSE]
             /\ gp'   = [r \in Rings |-> gp[r] \ {p}]

\* Dead producer-private registers are reset when the producer goes back to
\* P1 (keeps the state space small; they are rewritten before any use).
ResetLocals(p) == /\ pR'  = [pR  EXCEPT ![p] = NoRing]
                  /\ pt'  = [pt  EXCEPT ![p] = 0]
                  /\ ptc' = [ptc EXCEPT ![p] = FALSE]
                  /\ ps'  = [ps  EXCEPT ![p] = 0]

\* Any access to ring r in a step: flag it if r is already freed.
Touch(r) == touchedFreed' = (touchedFreed \/ freed[r])

-----------------------------------------------------------------------------
Init ==
    /\ cap    = [r \in Rings |-> IF r = 1 THEN InitCap ELSE 0]
    /\ tail   = [r \in Rings |-> 0]
    /\ closed = [r \in Rings |-> FALSE]
    /\ seq    = [r \in Rings |-> [i \in Slots |-> FreeMark(i)]]  \* free for pos i
    /\ msg    = [r \in Rings |-> [i \in Slots |-> NoMsg]]
    /\ next   = [r \in Rings |-> NoRing]
    /\ prod = 1
    /\ cons = 1 /\ head = 0 /\ cpc = "idle" /\ cready = FALSE
    /\ cmsg = NoMsg /\ cdone = FALSE /\ newRing = NoRing
    /\ oldProd = NoRing /\ oldCons = NoRing /\ resizes = 0
    /\ inRS = [p \in Producers |-> FALSE]
    /\ retired = [r \in Rings |-> FALSE]
    /\ gp = [r \in Rings |-> {}]
    /\ freed = [r \in Rings |-> FALSE]
    /\ touchedFreed = FALSE
    /\ pc  = [p \in Producers |-> IF NumMsgs > 0 THEN "P1" ELSE "done"]
    /\ nxt = [p \in Producers |-> 1]
    /\ pR  = [p \in Producers |-> NoRing]
    /\ pt  = [p \in Producers |-> 0]
    /\ ptc = [p \in Producers |-> FALSE]
    /\ ps  = [p \in Producers |-> 0]
    /\ out = <<>>
    /\ quiet = FALSE

-----------------------------------------------------------------------------
(***************************************************************************)
(* Producer enqueue(<<p, nxt[p]>>)                                         *)
(***************************************************************************)

\* P1: rcu_read_lock; R := rcu_dereference(prod)
P1(p) ==
    /\ pc[p] = "P1"
    /\ inRS' = [inRS EXCEPT ![p] = TRUE]
    /\ pR' = [pR EXCEPT ![p] = prod]
    /\ pc' = [pc EXCEPT ![p] = "P2"]
    /\ UNCHANGED <<ringVars, consVars, retired, gp, freed, touchedFreed,
                   nxt, pt, ptc, ps, out, quiet>>

\* P2: t := load(R.T)
P2(p) ==
    LET R == pR[p] IN
    /\ pc[p] = "P2"
    /\ Touch(R)
    /\ pt'  = [pt  EXCEPT ![p] = tail[R]]
    /\ ptc' = [ptc EXCEPT ![p] = closed[R]]
    /\ pc' = [pc EXCEPT ![p] = "P3"]
    /\ UNCHANGED <<ringVars, consVars, rcuVars, nxt, pR, ps, out, quiet>>

\* P3, CLOSED seen: rcu_read_unlock; goto P1 (re-read prod)
P3Closed(p) ==
    /\ pc[p] = "P3" /\ ptc[p]
    /\ Unlock(p)
    /\ ResetLocals(p)
    /\ pc' = [pc EXCEPT ![p] = "P1"]
    /\ UNCHANGED <<ringVars, consVars, retired, freed, touchedFreed,
                   nxt, out, quiet>>

\* P3 not closed, then P4: s := load_acquire(R.slots[t mod C].seq)
P4Load(p) ==
    LET R == pR[p] IN
    /\ pc[p] = "P3" /\ ~ptc[p]
    /\ Touch(R)
    /\ ps' = [ps EXCEPT ![p] = seq[R][Slot(R, pt[p])]]
    /\ pc' = [pc EXCEPT ![p] = "P4"]
    /\ UNCHANGED <<ringVars, consVars, rcuVars, nxt, pR, pt, ptc, out, quiet>>

\* P4, s == t: CAS(R.T, t -> t+1).  Success: go write.  Failure: t := the
\* value seen (with its CLOSED bit), goto P3.
P4Cas(p) ==
    LET R == pR[p] IN
    /\ pc[p] = "P4" /\ ps[p] = FreeMark(pt[p])
    /\ Touch(R)
    /\ IF tail[R] = pt[p] /\ ~closed[R]
          THEN /\ tail' = [tail EXCEPT ![R] = pt[p] + 1]
               /\ pc' = [pc EXCEPT ![p] = "Write"]
               /\ UNCHANGED <<pt, ptc>>
          ELSE /\ pt'  = [pt  EXCEPT ![p] = tail[R]]
               /\ ptc' = [ptc EXCEPT ![p] = closed[R]]
               /\ pc' = [pc EXCEPT ![p] = "P3"]
               /\ UNCHANGED tail
    /\ UNCHANGED <<cap, closed, seq, msg, next, prod, consVars, rcuVars,
                   nxt, pR, ps, out, quiet>>

\* P4, s < t: FULL.  rcu_read_unlock; return FULL.  The caller sleeps (or
\* gets EAGAIN) and calls enqueue again: modelled as a retry from P1.
P4Full(p) ==
    /\ pc[p] = "P4" /\ ps[p] < FreeMark(pt[p])
    /\ Unlock(p)
    /\ ResetLocals(p)
    /\ pc' = [pc EXCEPT ![p] = "P1"]
    /\ UNCHANGED <<ringVars, consVars, retired, freed, touchedFreed,
                   nxt, out, quiet>>

\* P4, s > t: another producer took t.  t := load(R.T); goto P3.
P4Reload(p) ==
    LET R == pR[p] IN
    /\ pc[p] = "P4" /\ ps[p] > FreeMark(pt[p])
    /\ Touch(R)
    /\ pt'  = [pt  EXCEPT ![p] = tail[R]]
    /\ ptc' = [ptc EXCEPT ![p] = closed[R]]
    /\ pc' = [pc EXCEPT ![p] = "P3"]
    /\ UNCHANGED <<ringVars, consVars, rcuVars, nxt, pR, ps, out, quiet>>

\* P4 after a successful CAS: R.slots[t mod C].msg := m
Write(p) ==
    LET R == pR[p] IN
    /\ pc[p] = "Write"
    /\ Touch(R)
    /\ msg' = [msg EXCEPT ![R][Slot(R, pt[p])] = <<p, nxt[p]>>]
    /\ pc' = [pc EXCEPT ![p] = IF ReadyMark THEN "Publish" ELSE "Unlock"]
    /\ UNCHANGED <<cap, tail, closed, seq, next, prod, consVars, rcuVars,
                   nxt, pR, pt, ptc, ps, out, quiet>>

\* P4: store_release(R.slots[t mod C].seq, t+1)   -- the ready mark
\* (absent in the mutant)
Publish(p) ==
    LET R == pR[p] IN
    /\ pc[p] = "Publish"
    /\ Touch(R)
    /\ seq' = [seq EXCEPT ![R][Slot(R, pt[p])] = ReadyMk(pt[p])]
    /\ pc' = [pc EXCEPT ![p] = "Unlock"]
    /\ UNCHANGED <<cap, tail, closed, msg, next, prod, consVars, rcuVars,
                   nxt, pR, pt, ptc, ps, out, quiet>>

\* P4: rcu_read_unlock; done (next message, if any).
Done(p) ==
    /\ pc[p] = "Unlock"
    /\ Unlock(p)
    /\ nxt' = [nxt EXCEPT ![p] = nxt[p] + 1]
    /\ pc' = [pc EXCEPT ![p] = IF nxt[p] = NumMsgs THEN "done" ELSE "P1"]
    /\ ResetLocals(p)
    /\ UNCHANGED <<ringVars, consVars, retired, freed, touchedFreed,
                   out, quiet>>

Producer(p) == P1(p) \/ P2(p) \/ P3Closed(p) \/ P4Load(p) \/ P4Cas(p)
               \/ P4Full(p) \/ P4Reload(p) \/ Write(p) \/ Publish(p) \/ Done(p)

-----------------------------------------------------------------------------
(***************************************************************************)
(* Consumer                                                                *)
(***************************************************************************)

\* C1: R := cons; p := head; s := load_acquire(R.slots[p mod C].seq);
\*     ready iff s == p+1.
\* Mutant: no ready mark; ready iff load(R.T) > p.
C1 ==
    /\ cpc = "idle"
    /\ Touch(cons)
    /\ cready' = IF ReadyMark THEN seq[cons][Slot(cons, head)] = ReadyMk(head)
                              ELSE tail[cons] > head
    /\ cdone' = AllProducersDone
    /\ cpc' = "C1"
    /\ quiet' = FALSE
    /\ UNCHANGED <<ringVars, cons, head, cmsg, newRing, oldProd, oldCons,
                   resizes, rcuVars, prodVars, out>>

\* C2: m := R.slots[p mod C].msg
C2Read ==
    /\ cpc = "C1" /\ cready
    /\ Touch(cons)
    /\ cmsg' = msg[cons][Slot(cons, head)]
    /\ cpc' = "C2"
    /\ UNCHANGED <<ringVars, cons, head, cready, cdone, newRing, oldProd,
                   oldCons, resizes, rcuVars, prodVars, out, quiet>>

\* C2: store_release(R.slots[p mod C].seq, p+C); head := p+1; return m
C2Free ==
    /\ cpc = "C2"
    /\ Touch(cons)
    /\ seq' = [seq EXCEPT ![cons][Slot(cons, head)] = FreeMark(head + cap[cons])]
    /\ head' = head + 1
    /\ out' = Append(out, cmsg)
    /\ cpc' = "idle"
    /\ cready' = FALSE /\ cmsg' = NoMsg /\ cdone' = FALSE  \* dead registers
    /\ UNCHANGED <<cap, tail, closed, msg, next, prod, cons,
                   newRing, oldProd, oldCons, resizes, rcuVars, prodVars, quiet>>

\* C3: not ready and R != prod: p == (load(R.T) without CLOSED)?
\*     yes -> R is drained: switch;  no -> C4 (EMPTY).
C3 ==
    /\ cpc = "C1" /\ ~cready /\ cons # prod
    /\ Touch(cons)
    /\ IF head = tail[cons]
          THEN /\ cpc' = "Switch" /\ UNCHANGED quiet
          ELSE /\ cpc' = "idle"   /\ quiet' = cdone     \* C4: EMPTY
    /\ cdone' = FALSE
    /\ UNCHANGED <<ringVars, cons, head, cready, cmsg, newRing, oldProd,
                   oldCons, resizes, rcuVars, prodVars, out>>

\* C4 (R == prod, not ready): return EMPTY.  The consumer sleeps until a
\* producer wakes it; modelled as going back to idle (it may poll again).
C4 ==
    /\ cpc = "C1" /\ ~cready /\ cons = prod
    /\ cpc' = "idle"
    /\ quiet' = cdone
    /\ cdone' = FALSE
    /\ UNCHANGED <<ringVars, cons, head, cready, cmsg, newRing, oldProd,
                   oldCons, resizes, rcuVars, prodVars, touchedFreed, out>>

\* C3 (drained): cons := R->next; head := 0.  R != prod, so a resize has
\* set R->next (R1) and closed R (R3): the tail just loaded is final.
Switch ==
    /\ cpc = "Switch"
    /\ Touch(cons)              \* reads cons->next
    /\ cons' = next[cons]
    /\ head' = 0
    /\ oldCons' = cons          \* remember the drained ring for Retire
    /\ cpc' = "Retire"
    /\ UNCHANGED <<ringVars, cready, cmsg, cdone, newRing, oldProd, resizes,
                   rcuVars, prodVars, out, quiet>>

\* C3: retire R (kvfree_rcu): the grace period starts now; it ends when
\* every producer currently in a read section has left it.  goto C1.
Retire ==
    /\ cpc = "Retire"
    /\ retired' = [retired EXCEPT ![oldCons] = TRUE]
    /\ gp' = [gp EXCEPT ![oldCons] = {p \in Producers : inRS[p]}]
    /\ oldCons' = NoRing
    /\ cpc' = "idle"
    /\ UNCHANGED <<ringVars, cons, head, cready, cmsg, cdone, newRing, oldProd,
                   resizes, inRS, freed, prodVars, touchedFreed, out, quiet>>

\* R1 (eq_lfq_resize; also while cons # prod, the consumer still draining
\*     older rings): old := prod; N := new ring of another capacity,
\*     slots[i].seq = free(i), T = 0, N->next = NULL; old->next := N.
\*     (Allocation failure = not resizing.)  The writes are plain stores
\*     that no other thread can observe before R2 (N is not published yet,
\*     ->next is read only by the consumer), so they form one step.
R1Alloc ==
    /\ cpc = "idle" /\ resizes < MaxResizes
    /\ \E c \in Caps \ {cap[prod]} :
          LET N == resizes + 2 IN
          /\ cap' = [cap EXCEPT ![N] = c]
          /\ newRing' = N
          /\ next' = [next EXCEPT ![prod] = N]
    /\ Touch(prod)              \* writes old->next
    /\ oldProd' = prod
    /\ resizes' = resizes + 1
    /\ cpc' = "R2"
    /\ UNCHANGED <<tail, closed, seq, msg, prod, cons, head, cready, cmsg,
                   cdone, oldCons, rcuVars, prodVars, out, quiet>>

\* R2: rcu_assign_pointer(prod, N)
R2Publish ==
    /\ cpc = "R2"
    /\ prod' = newRing
    /\ newRing' = NoRing
    /\ cpc' = "R3"
    /\ UNCHANGED <<cap, tail, closed, seq, msg, next, cons, head, cready, cmsg,
                   cdone, oldProd, oldCons, resizes, rcuVars, prodVars,
                   touchedFreed, out, quiet>>

\* R3: fetch_or(old->T, CLOSED) on the ring that was prod before R2 (not
\* necessarily cons).  Then the consumer keeps draining cons; C3 follows
\* ->next once a closed ring is drained.
R3Close ==
    /\ cpc = "R3"
    /\ Touch(oldProd)
    /\ closed' = [closed EXCEPT ![oldProd] = TRUE]
    /\ oldProd' = NoRing
    /\ cpc' = "idle"
    /\ UNCHANGED <<cap, tail, seq, msg, next, prod, cons, head, cready, cmsg,
                   cdone, newRing, oldCons, resizes, rcuVars, prodVars, out,
                   quiet>>

Consumer == C1 \/ C2Read \/ C2Free \/ C3 \/ C4 \/ Switch \/ Retire
            \/ R1Alloc \/ R2Publish \/ R3Close

-----------------------------------------------------------------------------
(***************************************************************************)
(* RCU: the callback queued by call_rcu runs after the grace period.       *)
(***************************************************************************)
Free(r) ==
    /\ retired[r] /\ ~freed[r]
    /\ WaitGrace => gp[r] = {}
    /\ freed' = [freed EXCEPT ![r] = TRUE]
    /\ UNCHANGED <<ringVars, consVars, inRS, retired, gp, prodVars,
                   touchedFreed, out, quiet>>

RCU == \E r \in Rings : Free(r)

-----------------------------------------------------------------------------
Next == \/ \E p \in Producers : Producer(p)
        \/ Consumer
        \/ RCU

Fairness == /\ \A p \in Producers : WF_vars(Producer(p))
            /\ WF_vars(Consumer)
            /\ WF_vars(RCU)

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(***************************************************************************)
(* Properties                                                              *)
(***************************************************************************)
Range(s) == {s[i] : i \in DOMAIN s}
OutOf(p) == SelectSeq(out, LAMBDA m : m # NoMsg /\ m[1] = p)
\* Sent: the message's enqueue has at least started (its payload is built).
Sent(m) == m \in Msgs /\ m[2] <= nxt[m[1]]
\* Enqueued: enqueue(m) has completed (returned success).
Enqueued(m) == m \in Msgs /\ m[2] < nxt[m[1]]
Consumed(m) == m \in Range(out)

TypeOK ==
    /\ cap \in [Rings -> {0} \cup Caps]
    /\ next \in [Rings -> Rings \cup {NoRing}]
    /\ prod \in Rings /\ cons \in Rings
    /\ newRing \in Rings \cup {NoRing} /\ oldProd \in Rings \cup {NoRing}
    /\ oldCons \in Rings \cup {NoRing}
    /\ head \in Nat
    /\ pc \in [Producers -> {"P1", "P2", "P3", "P4", "Write", "Publish",
                             "Unlock", "done"}]
    /\ cpc \in {"idle", "C1", "C2", "Switch", "Retire", "R2", "R3"}
    /\ inRS \in [Producers -> BOOLEAN]
    /\ gp \in [Rings -> SUBSET Producers]

\* -- exactly-once --
\* nothing invented: every dequeued value is a message that was sent
NoInvention == \A i \in DOMAIN out : Sent(out[i])
\* nothing duplicated
NoDuplication == \A i, j \in DOMAIN out : i < j => out[i] # out[j]
\* nothing lost so far: what was consumed of producer p is a prefix
\* <<p,1>>, <<p,2>>, ..., <<p,n>> of what p sent
NoLossSoFar == \A p \in Producers :
                  OutOf(p) = [i \in 1..Len(OutOf(p)) |-> <<p, i>>]
\* at the end, all sent consumed: once the consumer returns EMPTY from a
\* load made after every producer had finished, every message was consumed
AllConsumedWhenQuiet == quiet => \A m \in Msgs : Consumed(m)

ExactlyOnce == NoInvention /\ NoDuplication /\ NoLossSoFar
               /\ AllConsumedWhenQuiet

\* -- per-producer FIFO: consumed messages of each producer in increasing order
PerProducerFIFO == \A p \in Producers :
                      \A i, j \in DOMAIN OutOf(p) :
                         i < j => OutOf(p)[i][2] < OutOf(p)[j][2]

\* -- capacity bounds and ring count --
Allocated(r) == cap[r] # 0
CapacityBounds == \A r \in Rings : Allocated(r) => cap[r] \in MinCap..MaxCap
LiveRings == {r \in Rings : Allocated(r) /\ ~freed[r]}
AwaitingGrace == {r \in Rings : retired[r] /\ ~freed[r]}
\* The k-th ring after r along next (NoRing past the end).
RECURSIVE NextN(_, _)
NextN(r, k) == IF k = 0 \/ r = NoRing THEN r ELSE NextN(next[r], k - 1)
\* The chain the consumer still has to drain: cons, next[cons], ...
Chain == {NextN(cons, k) : k \in 0..MaxResizes} \ {NoRing}
\* Unretired rings that are not (or no longer) reachable from cons: the
\* ring R1 allocated, until R2 publishes it (it is on the chain already,
\* via next[prod]), and the drained ring Switch left, until Retire.
InFlight == {newRing, oldCons} \ {NoRing}
\* Chain order: next only links to a newer (higher-id) ring, so the chain
\* has no cycle; it ends at prod, whose next is set only by R1 (to the
\* ring R2 is about to publish); every ring on it before prod is closed
\* (except oldProd between R2 and R3); prod and newRing are not closed.
ChainOrder ==
    /\ \A r \in Rings : next[r] # NoRing => next[r] > r
    /\ prod \in Chain
    /\ next[prod] = IF cpc = "R2" THEN newRing ELSE NoRing
    /\ \A r \in Chain \ {prod, newRing} :
          closed[r] \/ (cpc = "R3" /\ r = oldProd)
    /\ ~closed[prod] /\ (newRing # NoRing => ~closed[newRing])
\* Live rings are exactly the chain from cons to prod, the rings of
\* InFlight, and retired rings awaiting their grace period; no ring on the
\* chain is retired (in particular neither cons nor prod).
RingCount ==
    /\ LiveRings = Chain \cup InFlight \cup AwaitingGrace
    /\ \A r \in Chain : Allocated(r) /\ ~retired[r]
    /\ {r \in Rings : Allocated(r) /\ ~retired[r]} = Chain \cup InFlight

\* -- memory safety: no step read or wrote a freed ring
NoTouchFreed == ~touchedFreed

\* -- liveness: every enqueued message is eventually consumed.
\* The textbook form is
EveryEnqueuedConsumed == \A m \in Msgs : Enqueued(m) ~> Consumed(m)
\* Enqueued(m) and Consumed(m) are stable (nxt and out only grow) and Msgs is
\* finite, so it is equivalent to the form below, which TLC checks with a
\* single tableau branch instead of one per message (several times faster):
EventuallyConsumed == []<>(\A m \in Msgs : Enqueued(m) => Consumed(m))
\* and every producer finishes and everything is consumed
AllEventuallyConsumed == <>(\A m \in Msgs : Consumed(m))

=============================================================================
