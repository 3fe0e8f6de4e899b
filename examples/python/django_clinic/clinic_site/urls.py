from django.urls import path

from scheduling import views

urlpatterns = [
    path("slots", views.slots, name="slots"),
    path("book", views.book, name="book"),
    path("cancel", views.cancel, name="cancel"),
]
