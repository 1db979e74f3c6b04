"""Extensions, created unbound here and bound in create_app()."""
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_mail import Mail
from flask_talisman import Talisman
from flask_wtf import CSRFProtect

compress = Compress()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
mail = Mail()
talisman = Talisman()
