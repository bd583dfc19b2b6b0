-- compose.yaml: the kernel's login, which owns nothing (docs/operations.md, step 1).
create role trellis_kernel login password 'kernel-password-change-me' nosuperuser nobypassrls noinherit;
