from .train import (
    add_run_info_hook,
    check_config,
    check_wrapper_type,
    cli,
    main,
    parse_args,
    say_when_nothing_to_resume,
    switch_to_amp,
)

__all__ = [
    'add_run_info_hook', 'check_config', 'check_wrapper_type', 'cli', 'main',
    'parse_args', 'say_when_nothing_to_resume', 'switch_to_amp'
]
