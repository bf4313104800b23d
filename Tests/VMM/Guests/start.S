/* brig test guest entry points.
 *  - _start:    64-bit entry (Linux 64-bit boot protocol style): long mode, paging on,
 *               RSI = zero page. Used by brig with --no-pvh.
 *  - pvh_start: 32-bit PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): paging off, EBX = hvm_start_info.
 *               Builds identity page tables for 4 GiB and enters long mode itself.
 * Both call guest_main(boot_ptr, is_pvh). */
    .section .text.start, "ax"
    .code64
    .globl _start
_start:
    lea     stack_top(%rip), %rsp
    mov     %rsi, %rdi
    xor     %esi, %esi
    call    guest_main
1:  hlt
    jmp     1b

    .code32
    .globl pvh_start
pvh_start:
    cli
    mov     %ebx, %esi                  /* keep hvm_start_info */
    /* PML4[0] -> PDPT */
    mov     $pdpt, %eax
    or      $3, %eax
    mov     %eax, pml4
    /* PDPT[0..3] -> PD[0..3] */
    mov     $pd, %eax
    or      $3, %eax
    xor     %ecx, %ecx
2:  mov     %eax, pdpt(,%ecx,8)
    add     $0x1000, %eax
    inc     %ecx
    cmp     $4, %ecx
    jne     2b
    /* 2048 2 MiB pages: entry i = (i << 21) | 0x83, high dword (i >> 11) */
    xor     %ecx, %ecx
3:  mov     %ecx, %eax
    shl     $21, %eax
    or      $0x83, %eax
    mov     %eax, pd(,%ecx,8)
    mov     %ecx, %eax
    shr     $11, %eax
    mov     %eax, pd+4(,%ecx,8)
    inc     %ecx
    cmp     $2048, %ecx
    jne     3b
    mov     %cr4, %eax
    or      $0x20, %eax                 /* PAE */
    mov     %eax, %cr4
    mov     $pml4, %eax
    mov     %eax, %cr3
    mov     $0xC0000080, %ecx           /* EFER.LME */
    rdmsr
    or      $0x100, %eax
    wrmsr
    mov     %cr0, %eax
    or      $0x80000001, %eax           /* PG | PE */
    mov     %eax, %cr0
    lgdt    gdt_ptr
    ljmp    $0x08, $pvh64

    .code64
pvh64:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    lea     stack_top(%rip), %rsp
    mov     %esi, %edi                  /* boot_ptr = start_info */
    mov     $1, %esi                    /* is_pvh */
    call    guest_main
4:  hlt
    jmp     4b

    .section .rodata
    .align 8
gdt:
    .quad   0
    .quad   0x00AF9B000000FFFF          /* 0x08: 64-bit code */
    .quad   0x00CF93000000FFFF          /* 0x10: data */
gdt_end:
gdt_ptr:
    .word   gdt_end - gdt - 1
    .long   gdt

    .section .note.Xen, "a"
    .align 4
    .long   4                           /* namesz */
    .long   4                           /* descsz */
    .long   18                          /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz  "Xen"
    .align 4
    .long   pvh_start
    .align 4

    .section .bss
    .align 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pd:     .skip 4096 * 4
    .skip 16384
stack_top:
