# Sums `perf report --no-children --sort sym --stdio` percentages into a few categories:
# where a server's CPU goes. Used by scripts/check-targets.sh part 8.
/^#/ || NF < 3 { next }
{
  pct = $1; sub(/%/, "", pct); sym = $3
  if ($2 == "[.]") c = "user space (the loop, the protocol)"
  else if (sym ~ /^(__)?io_|io_uring/) c = "io_uring machinery"
  else if (sym ~ /^ep_|epoll/) c = "epoll"
  else if (sym ~ /tcp|^ip_|^__ip|skb|^net_|dev_|sock|inet|netif|loopback|bbr|napi|_copy_(to|from)_iter|^__sys_(send|recv)|__dst|rt_|nf_|sk_|lock_sock|release_sock/) c = "network stack (TCP/IP, loopback)"
  else if (sym ~ /syscall|entry_SYSCALL|__x64_sys|exit_to_user|rseq|fdget|fput|__fget/) c = "system call entry, exit, fd lookup"
  else if (sym ~ /schedule|task_switch|pick_next|enqueue|dequeue|ttwu|wake|update_curr|update_load|hrtimer|tick|timer/) c = "scheduler, wake-ups, timers"
  else c = "other kernel"
  s[c] += pct
}
END { for (c in s) printf "  %5.1f%%  %s\n", s[c], c }
