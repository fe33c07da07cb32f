from .train import check_config, main, parse_args, switch_to_amp

__all__ = ['main', 'parse_args', 'check_config', 'switch_to_amp']
