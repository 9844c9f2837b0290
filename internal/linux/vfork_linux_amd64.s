#include "textflag.h"

// func rawVfork() (pid uintptr, errno syscall.Errno)
TEXT ·rawVfork(SB),NOSPLIT|NOFRAME,$0-16
	MOVQ	$0x4111, DI	// CLONE_VFORK|CLONE_VM|SIGCHLD
	MOVQ	$0, SI	// same stack
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX	// SYS_clone
	POPQ	R12	// the return address: the child will reuse this stack
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$0, pid+0(FP)
	NEGQ	AX
	MOVQ	AX, errno+8(FP)
	RET
ok:
	MOVQ	AX, pid+0(FP)
	MOVQ	$0, errno+8(FP)
	RET
