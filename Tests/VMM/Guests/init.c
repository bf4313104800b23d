/* Minimal static /init for the Linux boot test: greets on the console, then reboots
 * (with reboot=k brig sees the i8042 reset and exits 0). */
#include <unistd.h>
#include <sys/reboot.h>
int main(void) {
    static const char msg[] = "brig-init: hello from PID 1\n";
    write(1, msg, sizeof msg - 1);
    sync();
    reboot(RB_AUTOBOOT);
    return 0;
}
